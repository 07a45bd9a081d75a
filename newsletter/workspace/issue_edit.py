"""Edit an issue file from the web editor: change fields, reorder and remove items, in place.

The file stays the one the CLI and $EDITOR use (tomlkit keeps comments and layout); a change
is written only when the file is still the version the editor loaded (compared by digest), so
a save never silently overwrites a change made elsewhere meanwhile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from ..errors import EditConflict, IssueError
from ..files import write_atomic
from ..issues import TOMBSTONE_NOTE, TOMBSTONES, issue_path, load_issue

ISSUE_FIELDS = ("title", "intro", "preheader")
ITEM_FIELDS = ("title", "summary", "note", "section", "image_alt")
_ALWAYS = ("url", "title", "summary")     # keys every item keeps, even empty (as `add` writes them)


@dataclass
class ItemEdit:
    """The editor's version of one item: which stored item (by its url) and its new field values."""

    url: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class IssueEdit:
    """The editor's version of an issue: its fields and its items in the new order (missing = removed)."""

    values: dict[str, str]
    items: list[ItemEdit]


def file_digest(issues_dir: Path, issue_id: str) -> str:
    """Return the hex SHA-256 of issues/<id>.toml as stored now; raise IssueError when unreadable."""
    path = issue_path(issues_dir, issue_id)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as err:
        raise IssueError(f"{path}: cannot read: {err}") from err


@dataclass(frozen=True)
class SavedEdit:
    """What save_edit wrote: the file's new digest and the items it removed (their fields)."""

    digest: str
    removed: list[dict[str, str]]


def save_edit(issues_dir: Path, issue_id: str, edit: IssueEdit, expected_digest: str) -> SavedEdit:
    """Write edit into the issue file when it still has expected_digest; return what was saved.

    Items are matched by url; an item of the file that edit does not name is removed, and its
    link becomes a tombstone (`removed = [...]`, in the same write) so `add` never brings it
    back; an item edit names that the file does not have is refused. Raises EditConflict when
    the file changed since expected_digest was taken, IssueError when the file or edit is invalid.
    """
    path = issue_path(issues_dir, issue_id)
    data = path.read_bytes() if path.exists() else b""
    if hashlib.sha256(data).hexdigest() != expected_digest:
        raise EditConflict(f"issue {issue_id!r} was changed elsewhere since you opened it "
                           "(another browser, the CLI or an editor); your version was not saved",
                           issue_id)
    load_issue(issues_dir, issue_id)           # refuses a file that is invalid already
    try:
        doc = tomlkit.parse(data.decode("utf-8"))
    except (TOMLKitError, UnicodeDecodeError) as err:
        raise IssueError(f"{path}: invalid TOML: {err}") from err
    for key, value in edit.values.items():
        if key not in ISSUE_FIELDS:
            raise IssueError(f"unknown issue field {key!r}")
        doc[key] = tomlkit.string(value.strip(), multiline="\n" in value.strip())
    old = doc.get("items")
    tables = list(old) if old is not None else []
    by_url: dict[str, list[object]] = {}
    for table in tables:
        by_url.setdefault(str(table.get("url", "")), []).append(table)
    ordered = tomlkit.aot()
    for item in edit.items:
        matches = by_url.get(item.url)
        if not matches:
            raise EditConflict(f"issue {issue_id!r} has no item {item.url!r} any more", issue_id)
        table = matches.pop(0)
        _apply(table, item.values)
        ordered.append(table)
    removed = [{k: str(v) for k, v in t.items()} for rest in by_url.values() for t in rest]  # type: ignore[attr-defined]
    if "items" in doc:
        del doc["items"]
    _tombstone(doc, [r["url"] for r in removed if r.get("url")])
    if len(ordered):
        doc["items"] = ordered
    text = tomlkit.dumps(doc)
    write_atomic(path, text.encode("utf-8"))
    load_issue(issues_dir, issue_id)           # what we wrote must load (it always should)
    return SavedEdit(hashlib.sha256(text.encode("utf-8")).hexdigest(), removed)


def _tombstone(doc: tomlkit.TOMLDocument, links: list[str]) -> None:
    """Add links to the document's `removed` list (set while [[items]] is out of the document, so
    the key stays above the tables)."""
    if not links:
        return
    known = [str(v) for v in doc.get(TOMBSTONES, [])]
    array = tomlkit.array()
    array.extend(list(dict.fromkeys(known + links)))
    array.multiline(True)
    array.comment(TOMBSTONE_NOTE)
    doc[TOMBSTONES] = array


def _apply(table: object, values: dict[str, str]) -> None:
    """Set the item fields in values on one [[items]] table; empty optional fields are dropped."""
    for key, value in values.items():
        if key not in ITEM_FIELDS:
            raise IssueError(f"unknown item field {key!r}")
        value = value.replace("\r\n", "\n").strip()
        if not value and key not in _ALWAYS:
            if key in table:                    # type: ignore[operator]
                del table[key]                  # type: ignore[attr-defined]
            continue
        table[key] = tomlkit.string(value, multiline=key in ("summary", "note") and bool(value))  # type: ignore[index]
