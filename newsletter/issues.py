"""Load, create and append to issue files (issues/<id>.toml); returns Issue, raises IssueError."""

from __future__ import annotations

import dataclasses
import re
from datetime import date as Date
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from .errors import IssueError
from .files import write_atomic
from .models import Issue, Item

# The one issue-id rule (file names, state folders, archive URLs, job ids): letters, digits, ".",
# "_" and "-", at most 64, starting with a letter or digit, never ".." (no path can be formed).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_ISSUE_KEYS = {"id", "title", "date", "intro", "preheader", "outro", "items", "removed"}
_ITEM_KEYS = {f.name for f in dataclasses.fields(Item)}
# The summary goes last: it is the long, most edited value (then the editor's note, if any).
_WRITE_ORDER = ("url", "title", "section", "source", "author", "date", "image", "image_alt", "summary",
                "note")

_HEADER = """\
# Issue {id}. Edit freely: reorder the [[items]] blocks, rewrite titles and summaries,
# delete what you don't want. `newsletter add` only appends and never changes what is here.
# intro, outro and an item's note = "..." are Markdown and may use merge fields such as
# {{{{ subscriber.name or 'there' }}}}; keep intro and outro above the first [[items]].
"""


def is_issue_id(value: str) -> bool:
    """Return True when value is a valid issue id (see _ID)."""
    return bool(_ID.match(value or "")) and ".." not in value


def archive_url(base_url: str, issue_id: str) -> str:
    """Return the public URL of a sent issue in the web archive (the emails' "view online" link)."""
    return f"{base_url.rstrip('/')}/archive/{issue_id}"


def check_issue_id(issue_id: str) -> str:
    """Return issue_id when it is a valid issue id; raise IssueError otherwise."""
    if not is_issue_id(issue_id):
        raise IssueError(f"invalid issue id {issue_id!r}: use letters, digits, '.', '_' or '-' "
                         "(at most 64, starting with a letter or digit, no '..')")
    return issue_id


def issue_path(issues_dir: Path, issue_id: str) -> Path:
    """Return the path of the issue file for issue_id (raises IssueError for an unsafe id)."""
    return issues_dir / f"{check_issue_id(issue_id)}.toml"


def create_issue(issues_dir: Path, issue_id: str, title: str = "", when: Date | None = None,
                 intro: str = "") -> Path:
    """Create issues/<id>.toml and return its path; raise IssueError when it already exists."""
    path = issue_path(issues_dir, issue_id)
    if path.exists():
        raise IssueError(f"{path}: issue {issue_id!r} already exists")
    doc = tomlkit.document()
    for line in _HEADER.format(id=issue_id).splitlines():
        doc.add(tomlkit.comment(line[2:]))
    doc.add(tomlkit.nl())
    doc["id"] = issue_id
    doc["title"] = title or f"Issue {issue_id}"
    doc["date"] = (when or Date.today()).isoformat()
    doc["intro"] = tomlkit.string(intro, multiline="\n" in intro)
    doc["preheader"] = ""
    doc["outro"] = ""
    doc.add(tomlkit.nl())
    write_atomic(path, tomlkit.dumps(doc).encode("utf-8"))
    return path


def _read_document(path: Path) -> tomlkit.TOMLDocument:
    """Parse the issue file, keeping comments; raise IssueError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise IssueError(f"{path}: no such issue (create it with `newsletter issue new "
                         f"{path.stem}`)") from err
    except (OSError, UnicodeDecodeError) as err:
        raise IssueError(f"{path}: cannot read: {err}") from err
    try:
        return tomlkit.parse(text)
    except TOMLKitError as err:
        raise IssueError(f"{path}: invalid TOML: {err}") from err


def _item_from_table(path: Path, index: int, table: object) -> Item:
    """Return the Item of one [[items]] table; raise IssueError for unknown keys or bad types."""
    # Counted from 1 with its title, as `build` and `issue show` name items.
    where = f"item {index + 1}"
    if not isinstance(table, dict):
        raise IssueError(f"{path}: {where} must be a [[items]] table")
    if isinstance(table.get("title"), str) and table["title"].strip():
        where += f" {table['title'].strip()[:60]!r}"
    unknown = set(table) - _ITEM_KEYS
    if unknown:
        key = sorted(unknown)[0]
        hint = (f"; {key} belongs to the issue: move it above the first [[items]]"
                if key in _ISSUE_KEYS else "")
        raise IssueError(f"{path}: {where}: unknown key {key!r} "
                         f"(known: {', '.join(sorted(_ITEM_KEYS))}){hint}")
    values: dict[str, str] = {}
    for key, value in table.items():
        if not isinstance(value, str):
            raise IssueError(f"{path}: {where}: {key} must be a string")
        values[key] = str(value).strip()
    return Item(**{"url": "", "title": "", **values})


def load_issue(issues_dir: Path, issue_id: str) -> Issue:
    """Return the Issue stored in issues/<id>.toml; raise IssueError for a missing or invalid file."""
    path = issue_path(issues_dir, issue_id)
    doc = _read_document(path).unwrap()
    unknown = set(doc) - _ISSUE_KEYS
    if unknown:
        raise IssueError(f"{path}: unknown key {sorted(unknown)[0]!r} "
                         f"(known: {', '.join(sorted(_ISSUE_KEYS))})")
    for key in ("title", "date", "intro", "preheader", "outro"):
        if key in doc and not isinstance(doc[key], (str, Date)):
            raise IssueError(f"{path}: {key} must be a string")
    if doc.get("id", issue_id) != issue_id:
        raise IssueError(f"{path}: id {doc['id']!r} does not match the file name ({issue_id!r})")
    raw_items = doc.get("items", [])
    if not isinstance(raw_items, list):
        raise IssueError(f"{path}: items must be an array of tables ([[items]])")
    items = tuple(_item_from_table(path, i, t) for i, t in enumerate(raw_items))
    return Issue(id=issue_id, title=str(doc.get("title", "")).strip(), date=str(doc.get("date", "")),
                 intro=str(doc.get("intro", "")).strip(), preheader=str(doc.get("preheader", "")).strip(),
                 items=items, outro=str(doc.get("outro", "")).strip())


def append_items(issues_dir: Path, issue_id: str, items: list[Item]) -> None:
    """Append items to the issue file atomically, leaving every existing line and comment as it is."""
    if not items:
        return
    path = issue_path(issues_dir, issue_id)
    doc = _read_document(path)
    aot = doc.get("items")
    if aot is None or (isinstance(aot, list) and not isinstance(aot, tomlkit.items.AoT) and not aot):
        aot = tomlkit.aot()
        doc["items"] = aot
    elif not isinstance(aot, tomlkit.items.AoT):
        raise IssueError(f"{path}: items must be an array of tables ([[items]])")
    for item in items:
        table = tomlkit.table()
        for key in _WRITE_ORDER:
            value = getattr(item, key)
            if value or key in ("url", "title", "summary"):
                table[key] = tomlkit.string(value, multiline=key in ("summary", "note") and bool(value))
        aot.append(table)
    write_atomic(path, tomlkit.dumps(doc).encode("utf-8"))


def list_issue_ids(issues_dir: Path) -> list[str]:
    """Return the ids of the issue files in issues_dir, sorted."""
    if not issues_dir.is_dir():
        return []
    return sorted(p.stem for p in issues_dir.glob("*.toml") if is_issue_id(p.stem))


# -- tombstones: the links the editor removed from an issue, so that `add` never brings them back --

TOMBSTONES = "removed"
TOMBSTONE_NOTE = "removed by you: `add` skips these; delete a line to allow it again"


def load_tombstones(issues_dir: Path, issue_id: str) -> list[str]:
    """Return the issue file's `removed = [...]` links in file order; raise IssueError when invalid."""
    path = issue_path(issues_dir, issue_id)
    value = _read_document(path).unwrap().get(TOMBSTONES, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise IssueError(f"{path}: {TOMBSTONES} must be a list of links, e.g. "
                         f'{TOMBSTONES} = ["https://example.org/story"]')
    return [v.strip() for v in value if v.strip()]


def save_tombstones(issues_dir: Path, issue_id: str, links: list[str]) -> None:
    """Set the issue file's `removed` list to links (duplicates dropped; the key goes when empty),
    atomically, leaving every other line and comment as it is; raise IssueError."""
    path = issue_path(issues_dir, issue_id)
    doc = _read_document(path)
    links = list(dict.fromkeys(link for link in links if link))
    if not links:
        if TOMBSTONES in doc:
            del doc[TOMBSTONES]
        else:
            return
    else:
        array = tomlkit.array()
        array.extend(links)
        array.multiline(True)
        array.comment(TOMBSTONE_NOTE)
        doc[TOMBSTONES] = array              # top-level keys stay above the [[items]] tables
    write_atomic(path, tomlkit.dumps(doc).encode("utf-8"))
