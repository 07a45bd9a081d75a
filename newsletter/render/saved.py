"""Save and load an issue's render under state/issues/<id>/: returns Rendered, raises IssueError."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import IssueError
from ..issues import check_issue_id
from ..files import write_atomic
from ..models import Rendered

HTML_FILE, TEXT_FILE, META_FILE, PREVIEW_FILE = "email.html", "email.txt", "rendered.json", "preview.eml"
# The render filled for a sample subscriber: what editors open (email.html holds raw tokens).
PREVIEW_HTML, PREVIEW_TEXT = "preview.html", "preview.txt"


def render_dir(state_dir: Path, issue_id: str) -> Path:
    """Return the folder that holds the render of issue_id; raises IssueError for an invalid id
    (the one issue-id rule: no path outside state/issues/ can be formed)."""
    return state_dir / "issues" / check_issue_id(issue_id)


def save_rendered(state_dir: Path, rendered: Rendered, inputs: dict[str, str] | None = None) -> Path:
    """Write email.html, email.txt and rendered.json (metadata last, so it marks a complete render).

    The metadata holds the merge-field snippets that personalisation evaluates per subscriber and
    the digests of what the render was made from (inputs, see render.inputs), so that a send can
    tell a stale render.
    """
    folder = render_dir(state_dir, rendered.issue_id)
    write_atomic(folder / HTML_FILE, rendered.html.encode("utf-8"))
    write_atomic(folder / TEXT_FILE, rendered.text.encode("utf-8"))
    meta = {"issue_id": rendered.issue_id, "subject": rendered.subject,
            "preheader": rendered.preheader, "nonce": rendered.nonce,
            "merge_fields": [list(pair) for pair in rendered.merge_fields]}
    if inputs:
        meta["inputs"] = inputs
    write_atomic(folder / META_FILE, json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
    return folder


def is_built(state_dir: Path, issue_id: str) -> bool:
    """Return True when a complete render of issue_id was saved (its metadata is written last)."""
    return (render_dir(state_dir, issue_id) / META_FILE).exists()


def load_meta(state_dir: Path, issue_id: str) -> dict:
    """Return the saved render's metadata (issue_id, subject, preheader, nonce, and "inputs": the
    digests it was made from when recorded) without its bodies.

    Raises IssueError when it was never built or the metadata is unreadable.
    """
    path = render_dir(state_dir, issue_id) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise IssueError(f"issue {issue_id!r} was never built (run `newsletter build {issue_id}`)") from err
    except (OSError, ValueError) as err:
        raise IssueError(f"{path}: damaged render metadata of issue {issue_id!r} ({err}); rebuild it") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("subject"), str):
        raise IssueError(f"{path}: damaged render metadata of issue {issue_id!r}; rebuild it")
    return meta


def load_rendered(state_dir: Path, issue_id: str) -> Rendered:
    """Return the saved render of issue_id; raise IssueError when it was never built or is damaged."""
    folder = render_dir(state_dir, issue_id)
    meta_path = folder / META_FILE
    if not meta_path.exists():
        raise IssueError(f"issue {issue_id!r} was never built (run `newsletter build {issue_id}`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        html = (folder / HTML_FILE).read_text(encoding="utf-8")
        text = (folder / TEXT_FILE).read_text(encoding="utf-8")
        merge_fields = tuple((str(field), str(source)) for field, source in meta.get("merge_fields", []))
        return Rendered(issue_id=meta["issue_id"], subject=meta["subject"], preheader=meta["preheader"],
                        html=html, text=text, nonce=meta["nonce"], merge_fields=merge_fields)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IssueError(f"{folder}: damaged render of issue {issue_id!r} ({err}); rebuild it") from err
