"""Front matter of saved text/Markdown articles (Jekyll/Hugo style): returns (metadata, body)."""

from __future__ import annotations

import re

# A block of "key: value" lines between two "---" lines at the very top of the file, as static
# site generators write it. It lets an editor keep a saved article's address, title and byline
# with the text itself (and `newsletter add` then links the item).
_BLOCK = re.compile(r"\A\ufeff?---[ \t]*\n(.*?\n)---[ \t]*(?:\n|\Z)", re.S)
_LINE = re.compile(r"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*?)[ \t]*$")
KEYS = {"title": "title", "url": "url", "link": "url", "canonical_url": "url", "author": "author",
        "date": "date", "source": "site_name", "site": "site_name", "site_name": "site_name",
        "image": "image", "description": "description"}


def split_front_matter(raw: str) -> tuple[dict[str, str], str]:
    """Return the known front-matter fields (as Article field names) and the text after the block.

    Text without a front-matter block comes back unchanged with an empty mapping; keys we do not
    use (tags, layout, …) are ignored, as every static site generator's own keys would be.
    """
    match = _BLOCK.match(raw)
    if not match:
        return {}, raw
    fields: dict[str, str] = {}
    for line in match.group(1).splitlines():
        found = _LINE.match(line)
        if not found:
            continue
        key = KEYS.get(found.group(1).lower())
        value = found.group(2).strip().strip("\"'")
        if key and value:
            fields[key] = value
    return fields, raw[match.end():]
