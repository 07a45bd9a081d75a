"""The JSON API at /api/v1/: bearer tokens (RFC 6750), JSON errors with a stable code, an OpenAPI document.

No cookie is ever accepted here, so the API needs no CSRF token: a browser cannot attach a
bearer token to a cross-site request by itself.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ...errors import EditConflict, NewsletterError, SubscriberError
from ..auth import bearer_token_name

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_UNSTORABLE = re.compile("[\\x00\\ud800-\\udfff]")
_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "too_many_requests"}


def error(status: int, code: str, message: str) -> Response:
    """Return the JSON error response {"error": {"code", "message"}} with status."""
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="newsletter"'
    return resp


@bp.before_request
def _require_token() -> Response | None:
    """Answer 401 unless the request carries a valid bearer token."""
    name = bearer_token_name()
    if name is None:
        return error(401, "unauthorized", "send a valid API token as 'Authorization: Bearer TOKEN' "
                     "(make one with `newsletter tokens create NAME`)")
    g.api_token = name
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    """API answers are never cached and never framed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    return response


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> Response:
    """Return HTTP errors raised in the API as JSON."""
    status = err.code or 500
    return error(status, _CODES.get(status, "error"), err.description or err.name)


@bp.errorhandler(NewsletterError)
def _library_error(err: NewsletterError) -> Response:
    """Return a library error no view caught as JSON: the user's input or the issue's state was
    wrong (400; 409 for an edit conflict), never a 500."""
    if isinstance(err, EditConflict):
        return error(409, "conflict", str(err))
    if isinstance(err, SubscriberError):
        return error(400, "invalid_subscriber", str(err))
    return error(400, "bad_request", str(err))


def routing_error(err: HTTPException) -> Response:
    """Return an HTTP error raised outside the API's views (an unknown path, a method the path does
    not have) as JSON: 401 without a valid token, as everywhere under /api/, else err's status."""
    if bearer_token_name() is None:
        return error(401, "unauthorized", "send a valid API token as 'Authorization: Bearer TOKEN'")
    resp = _http_error(err)
    for key, value in err.get_headers():
        if key.lower() == "allow":
            resp.headers["Allow"] = value
    return resp


def json_body() -> dict[str, Any]:
    """Return the request's JSON object body; abort with a JSON 400/415 when there is none."""
    from flask import abort

    if not request.is_json:
        abort(415, description="send the body as JSON (Content-Type: application/json)")
    try:
        body = request.get_json(silent=True)
    except RecursionError:      # the json module recurses once per nested array or object
        abort(400, description="the body is nested too deeply")
    if not isinstance(body, dict):
        abort(400, description="the body must be a JSON object")
    bad = _unstorable(body)
    if bad:
        abort(400, description=f"the body holds {bad}, which no text field can store")
    return body


def _unstorable(value: Any) -> str:
    """Return a description of the first character in value's strings (keys included) that cannot
    be stored, else "".

    JSON's \\u escapes can spell a lone UTF-16 surrogate (not encodable as UTF-8, so neither the
    issue files nor the database take it) and U+0000 (PostgreSQL text refuses it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found:
                return f"the character U+{ord(found.group()):04X}"
    return ""


def init_api(app: Flask) -> None:
    """Register the API blueprint on app (every view is exempt from the cookie CSRF check)."""
    from . import curating, people, sending, views  # noqa: F401 - registers the routes
    from ..security import csrf_exempt

    app.register_blueprint(bp)
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("api."):
            app.view_functions[endpoint] = csrf_exempt(view)
