"""Subscriber CSV files over the web, shared by the admin page and the JSON API: an upload is
imported through a private temporary file, and a list is answered as a CSV download."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from flask import Response

from ..errors import NewsletterError
from ..subscribers.csvfile import ImportReport
from ..subscribers.store import SubscriberStore


def import_upload(store: SubscriberStore, save: Callable[[BinaryIO], None], upload_name: str,
                  list_name: str) -> ImportReport:
    """Import an upload into list_name and return the store's ImportReport.

    save(handle) writes the upload's bytes to a private temporary file (mkstemp: mode 0600), which
    SubscriberStore.import_csv reads and which is deleted afterwards, whatever happens. Raises the
    store's NewsletterError with a message that names the file as upload_name (the name the editor
    knows), never by the temporary path; an error raised by save (e.g. a 413) passes through."""
    fd, path = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as handle:
            save(handle)
        return store.import_csv(path, list_name)
    except NewsletterError as err:
        err.args = (str(err).replace(path, upload_name[:200]),)
        raise
    finally:
        os.unlink(path)


def export_download(store: SubscriberStore, list_name: str) -> Response:
    """Return list_name as a text/csv attachment "subscribers.csv" (SubscriberStore.export_csv: a
    formula-like cell gets a ' in front, OWASP "CSV Injection"); raises the store's NewsletterError."""
    out = io.StringIO()
    store.export_csv(out, list_name)
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
    return resp
