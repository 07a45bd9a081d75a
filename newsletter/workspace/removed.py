"""What the web editor removed from an issue, kept so that it can be restored as it was.

The issue file's `removed = [...]` list (the tombstones) holds only links; the fields of an item
removed in the editor (title, summary, note, ...) are kept beside it in state/removed/<id>.json.
An item removed elsewhere (the CLI, $EDITOR) has no fields here: restoring it fetches it again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..files import write_atomic
from ..issues import check_issue_id

log = logging.getLogger(__name__)

FOLDER = "removed"


def _path(state_dir: Path, issue_id: str) -> Path:
    """Return the file of issue_id's removed items (raises IssueError for a bad id)."""
    return state_dir / FOLDER / f"{check_issue_id(issue_id)}.json"


def load_removed(state_dir: Path, issue_id: str) -> dict[str, dict[str, str]]:
    """Return {url: the item's fields} of the items removed from issue_id in the editor ({} when none)."""
    path = _path(state_dir, issue_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): {str(f): str(v) for f, v in fields.items()} for k, fields in data["items"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        # Only a convenience is lost: a restore then fetches the article again.
        log.warning("%s: unreadable (%s); removed items of issue %s are restored by fetching them",
                    path, err, issue_id)
        return {}


def remember_removed(state_dir: Path, issue_id: str, items: list[dict[str, str]]) -> None:
    """Keep the fields of items (each with its url) removed from issue_id, atomically."""
    items = [i for i in items if i.get("url")]
    if not items:
        return
    known = load_removed(state_dir, issue_id)
    known.update({i["url"]: i for i in items})
    write_atomic(_path(state_dir, issue_id), json.dumps({"issue_id": issue_id, "items": known},
                                                        ensure_ascii=False, indent=1).encode("utf-8"))


def forget_removed(state_dir: Path, issue_id: str, url: str) -> None:
    """Drop the kept fields of url (after it was restored)."""
    known = load_removed(state_dir, issue_id)
    if known.pop(url, None) is not None:
        write_atomic(_path(state_dir, issue_id), json.dumps({"issue_id": issue_id, "items": known},
                                                            ensure_ascii=False, indent=1).encode("utf-8"))
