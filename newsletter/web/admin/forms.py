"""Reading the admin's forms: the issue editor's fields and buttons, pasted links."""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from ...workspace.issue_edit import ISSUE_FIELDS, ITEM_FIELDS, IssueEdit, ItemEdit

MAX_ITEMS = 500
MAX_LINKS = 50
_ACTION = re.compile(r"(save|overwrite|add|up|down|remove|restore|blurb)(?:-(\d{1,4}))?\Z")
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class EditorAction:
    """The button the editor pressed: save, overwrite (after a conflict), add (links), up/down/remove
    of item index, restore of removed link index, or blurb (regenerate the summary) of item index."""

    kind: str
    index: int = -1


def editor_action(form: MultiDict[str, str]) -> EditorAction:
    """Return the action of the pressed button (Enter in a field means save)."""
    found = _ACTION.match(form.get("action", "save"))
    if not found:
        return EditorAction("save")
    return EditorAction(found.group(1), int(found.group(2)) if found.group(2) else -1)


def issue_edit(form: MultiDict[str, str]) -> IssueEdit:
    """Return the IssueEdit the editor form describes (items in the order of the page)."""
    values = {key: form.get(key, "")[:20_000] for key in ISSUE_FIELDS if key in form}
    items = []
    for i in range(min(_int(form.get("count")), MAX_ITEMS)):
        url = form.get(f"item-{i}-url")
        if url is None:
            continue
        fields = {key: form.get(f"item-{i}-{key}", "")[:20_000] for key in ITEM_FIELDS
                  if f"item-{i}-{key}" in form}
        items.append(ItemEdit(url=url, values=fields))
    return IssueEdit(values=values, items=items)


def apply_action(edit: IssueEdit, action: EditorAction) -> IssueEdit:
    """Return edit with the item move or removal of action applied (other actions change nothing)."""
    items, i = list(edit.items), action.index
    if action.kind not in ("remove", "up", "down") or not 0 <= i < len(items):
        return edit
    if action.kind == "remove":
        del items[i]
    elif action.kind == "up" and i > 0:
        items[i - 1], items[i] = items[i], items[i - 1]
    elif action.kind == "down" and i < len(items) - 1:
        items[i + 1], items[i] = items[i], items[i + 1]
    return IssueEdit(values=edit.values, items=items)


def pasted_links(text: str) -> tuple[list[str], int]:
    """Return (the first MAX_LINKS http(s) URLs in pasted text, in order, without repeats; how
    many more different URLs it holds), so that a page can say what it left out."""
    seen: dict[str, None] = {}          # a dict: ordered, and a 4 MB paste stays linear
    for url in _URL.findall(text or ""):
        seen.setdefault(url.rstrip(".,;)>]\"'"), None)
    links = list(seen)
    return links[:MAX_LINKS], max(0, len(links) - MAX_LINKS)


def left_out_message(more: int) -> str:
    """Return the sentence naming the pasted links beyond MAX_LINKS that were not taken ("" for none)."""
    if not more:
        return ""
    return (f"{more} more link(s) were left out: at most {MAX_LINKS} are taken at a time. "
            "Paste the rest again.")


def _int(value: str | None) -> int:
    """Return value as a non-negative int (0 when it is not one)."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0
