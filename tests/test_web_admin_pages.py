"""Details of the editor's pages in Debian's chromium: Up and Down from the keyboard (after the
page reloads, focus is back on the button that moved the item, WCAG 2.4.3 focus order) and the
dashboard's state badges looking alike."""

from __future__ import annotations

import pytest

from admin_support import EDITOR, PASSWORD, served_config
from browser_support import NEEDS_CHROMIUM
from newsletter.issues import append_items, create_issue, load_issue
from newsletter.models import Item
from newsletter.web import serve_in_thread

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def editor_url(tmp_path, monkeypatch):
    """Yield (config, the editor page's URL) of an issue w1 with four items, the app under waitress."""
    config, port = served_config(tmp_path, monkeypatch)
    create_issue(config.paths.issues, "w1", "Week one")
    append_items(config.paths.issues, "w1", [
        Item(url=f"https://news.example.org/story-{n}", title=f"Story {n}", summary=f"Summary {n}.")
        for n in range(4)])
    with serve_in_thread(config, "127.0.0.1", port) as server:
        yield config, f"{server.url}/admin/issues/w1"


def test_up_and_down_keep_the_keyboard_on_the_moved_item(editor_url, browser):
    from playwright.sync_api import expect

    config, url = editor_url
    page = browser.new_page()
    page.goto(url)
    page.get_by_label("Username").fill(EDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(url)

    page.get_by_role("button", name="Move up: Story 3").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert [i.title for i in load_issue(config.paths.issues, "w1").items] == [
        "Story 0", "Story 1", "Story 3", "Story 2"]
    assert page.url.endswith("#item-2")             # the moved item's new place, not its old one
    expect(page.get_by_role("button", name="Move up: Story 3")).to_be_focused()

    with page.expect_navigation():                  # pressed again, it keeps climbing
        page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Move up: Story 3")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert [i.title for i in load_issue(config.paths.issues, "w1").items][0] == "Story 3"
    # At the top its Up button is disabled: focus goes to its Down button instead.
    expect(page.get_by_role("button", name="Move down: Story 3")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert [i.title for i in load_issue(config.paths.issues, "w1").items][1] == "Story 3"
    expect(page.get_by_role("button", name="Move down: Story 3")).to_be_focused()


def test_state_badges_share_one_shape(editor_url, browser):
    """A scheduled issue's badge is a pill like the others, not the editor's schedule box."""
    from newsletter.pipeline import build_issue
    from newsletter.schedule.scheduler import schedule_send

    config, url = editor_url
    build_issue(config, "w1")
    schedule_send(config, "w1", "2099-01-01 07:00")
    page = browser.new_page()
    page.goto(url)
    page.get_by_label("Username").fill(EDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(url.replace("/issues/w1", "/dashboard"))
    badge = page.locator("td .badge.scheduled")
    style = "e => [getComputedStyle(e).borderRadius, getComputedStyle(e).paddingTop]"
    assert badge.evaluate(style) == ["999px", "1.6px"]      # .badge: a pill, .1rem high padding
