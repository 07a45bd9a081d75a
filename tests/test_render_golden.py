"""Golden files: the render of a small fixed issue, compared exactly. Review a diff like code.

Regenerate after an intended change with:  UPDATE_GOLDEN=1 pytest tests/test_render_golden.py"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from newsletter.config import config_from_dict
from newsletter.models import Issue, Item
from newsletter.render.issue import render_issue

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
NONCE = "00000000feedf00d"


def golden_issue() -> Issue:
    data = json.loads((DATA / "render" / "golden_issue.json").read_text(encoding="utf-8"))
    return Issue(items=tuple(Item(**item) for item in data.pop("items")), **data)


def normalise(body: str) -> str:
    """One tag per line, so a diff points at the change; the nonce becomes a fixed word."""
    body = body.replace(NONCE, "NONCE")
    return re.sub(r">\s*<", ">\n<", body).rstrip("\n") + "\n"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    config = config_from_dict({"newsletter": {
        "name": "Golden Weekly", "postal_address": "Golden Weekly, 1 Test Street, 12345 Testtown",
        "subject": "{name} — {title} ({date})"}}, root)
    return render_issue(golden_issue(), config, nonce=NONCE)


@pytest.mark.parametrize("name", ["digest.html", "digest.txt"])
def test_render_matches_golden_file(rendered, name):
    actual = normalise(rendered.html if name.endswith(".html") else rendered.text)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert actual == path.read_text(encoding="utf-8")


def test_golden_subject_and_preheader(rendered):
    assert rendered.subject == "Golden Weekly — Golden issue (6 January 2025)"
    assert rendered.preheader == "Three stories, two sections, one picture."
