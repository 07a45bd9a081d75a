"""Save and load an issue's render under state/issues/<id>/: returns Rendered, raises IssueError."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import IssueError
from ..files import write_atomic
from ..models import Rendered

HTML_FILE, TEXT_FILE, META_FILE, PREVIEW_FILE = "email.html", "email.txt", "rendered.json", "preview.eml"


def render_dir(state_dir: Path, issue_id: str) -> Path:
    """Return the folder that holds the render of issue_id."""
    return state_dir / "issues" / issue_id


def save_rendered(state_dir: Path, rendered: Rendered, inputs: dict[str, str] | None = None) -> Path:
    """Write email.html, email.txt and rendered.json (metadata last, so it marks a complete render).

    inputs are the digests of what the render was made from (render.inputs), kept in the metadata
    so that a send can tell a stale render.
    """
    folder = render_dir(state_dir, rendered.issue_id)
    write_atomic(folder / HTML_FILE, rendered.html.encode("utf-8"))
    write_atomic(folder / TEXT_FILE, rendered.text.encode("utf-8"))
    meta = {"issue_id": rendered.issue_id, "subject": rendered.subject,
            "preheader": rendered.preheader, "nonce": rendered.nonce}
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
        return Rendered(issue_id=meta["issue_id"], subject=meta["subject"], preheader=meta["preheader"],
                        html=html, text=text, nonce=meta["nonce"])
    except (OSError, ValueError, KeyError) as err:
        raise IssueError(f"{folder}: damaged render of issue {issue_id!r} ({err}); rebuild it") from err
