"""Curation sticks: what `add` appended to an issue is remembered (state/curation/<id>.json), so a
link the editor deleted from the issue file becomes a tombstone (`removed = [...]` in that file)
and `add` never brings it back unless forced.

The memory holds each appended link with the sources it came from (a feed's variant of the
address), so a removed story is recognised before it is fetched again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from .. import issues
from ..config import Config
from ..files import write_atomic
from .duplicates import url_key

log = logging.getLogger(__name__)

FOLDER = "curation"


@dataclass(frozen=True)
class Appended:
    """A link `add` appended to an issue and the source addresses that led to it."""

    link: str
    sources: tuple[str, ...] = ()


def memory_path(config: Config, issue_id: str) -> Path:
    """Return the file that remembers what `add` appended to issue_id (raises IssueError for a bad id)."""
    return config.paths.state / FOLDER / f"{issues.check_issue_id(issue_id)}.json"


def load_appended(config: Config, issue_id: str) -> list[Appended]:
    """Return what `add` appended to issue_id and is still remembered; [] when nothing (or unreadable)."""
    path = memory_path(config, issue_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Appended(str(e["link"]), tuple(str(s) for s in e.get("sources", ())))
                for e in data["appended"]]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as err:
        # Only a convenience is lost (deletions made before now are not detected): say so, go on.
        log.warning("%s: unreadable (%s); deletions from issue %s before now are not remembered",
                    path, err, issue_id)
        return []


def _save(config: Config, issue_id: str, entries: list[Appended]) -> None:
    """Write the memory of issue_id atomically."""
    data = {"issue_id": issue_id,
            "appended": [{"link": e.link, "sources": list(e.sources)} for e in entries]}
    write_atomic(memory_path(config, issue_id), json.dumps(data, ensure_ascii=False, indent=1).encode())


def record_appended(config: Config, issue_id: str, entries: list[Appended]) -> None:
    """Remember entries as appended to issue_id (after they were written to the issue file)."""
    if entries:
        _save(config, issue_id, load_appended(config, issue_id) + entries)


def forget(config: Config, issue_id: str) -> None:
    """Drop the memory of issue_id (a new issue file of that id starts with nothing remembered)."""
    memory_path(config, issue_id).unlink(missing_ok=True)


def sync_tombstones(config: Config, issue_id: str) -> tuple[list[str], list[Appended], list[str]]:
    """Turn the links `add` appended that are no longer in the issue file into tombstones.

    Returns (the issue's tombstones, the remembered entries still in the issue, the links newly
    tombstoned by this call). Raises IssueError for a missing or invalid issue file.
    """
    issue = issues.load_issue(config.paths.issues, issue_id)
    tombstones = issues.load_tombstones(config.paths.issues, issue_id)
    appended = load_appended(config, issue_id)
    present = {url_key(i.url) for i in issue.items if i.url}
    kept = [e for e in appended if url_key(e.link) in present]
    gone = [e for e in appended if url_key(e.link) not in present]
    known = {url_key(t) for t in tombstones}
    new = [e.link for e in gone if url_key(e.link) not in known]
    if new:
        tombstones += new
        issues.save_tombstones(config.paths.issues, issue_id, tombstones)
    if gone:
        _save(config, issue_id, kept)
    return tombstones, kept, new


def clear_tombstones(config: Config, issue_id: str, links: list[str]) -> list[str]:
    """Remove the tombstones of links (compared by url_key) from issue_id; return those removed."""
    keys = {url_key(link) for link in links if link}
    tombstones = issues.load_tombstones(config.paths.issues, issue_id)
    cleared = [t for t in tombstones if url_key(t) in keys]
    if cleared:
        issues.save_tombstones(config.paths.issues, issue_id, [t for t in tombstones if t not in cleared])
    return cleared
