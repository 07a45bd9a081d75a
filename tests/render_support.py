"""What the render and checks tests share: the issues stored as JSON under tests/data/render/."""

from __future__ import annotations

import json
from pathlib import Path

from newsletter.models import Issue, Item

DATA = Path(__file__).parent / "data" / "render"
NONCE = "0123456789abcdef"


def load_issue(name: str) -> Issue:
    """Return the issue stored as JSON in tests/data/render/."""
    data = json.loads((DATA / name).read_text(encoding="utf-8"))
    items = tuple(Item(**item) for item in data.pop("items"))
    return Issue(items=items, **data)
