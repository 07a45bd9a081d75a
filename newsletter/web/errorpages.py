"""Error handlers: every failure becomes a plain page; the exception goes to the log, never the client."""

from __future__ import annotations

import logging

from flask import Flask, Response, make_response, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

_TITLES = {
    400: "This link or form is not valid",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed",
    413: "Too much data",
    429: "Too many attempts",
}


def _render(code: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """Return the error page response for code with message."""
    title = _TITLES.get(code, "Something went wrong")
    resp = make_response(render_template("error.html", code=code, title=title, message=message), code)
    for key, value in headers or ():
        if key.lower() != "content-type":
            resp.headers[key] = value
    return resp


def _http_error(err: HTTPException) -> Response:
    """Return our page for an HTTP error raised by a view or by routing."""
    code = err.code or 500
    if request.path.startswith("/api/") and code < 500:
        # Routing's 404 and 405 under /api/ happen before the API's blueprint sees the request:
        # answer them as the API answers everything, in JSON with a stable code.
        from .api import routing_error

        return routing_error(err)
    if code >= 500:
        return _server_error(err)
    return _render(code, err.description or "", err.get_headers())


def _server_error(err: BaseException) -> Response:
    """Log the exception with its traceback and return a page that says nothing about it."""
    original = getattr(err, "original_exception", None) or err
    if not (isinstance(original, HTTPException) and original.code and original.code < 500):
        log.error("web request failed: %s", original, exc_info=original)
    code = err.code if isinstance(err, HTTPException) and err.code else 500
    try:
        return _render(code, "The server could not finish your request. Please try again later.")
    except Exception:  # the template itself failed: fall back to a bare page, still no trace
        log.exception("error page failed to render")
        return InternalServerError().get_response()


def init_error_pages(app: Flask) -> None:
    """Register the handlers on app."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
