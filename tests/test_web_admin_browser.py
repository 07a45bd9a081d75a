"""The web editor end to end in Debian's chromium: log in, create an issue, add articles from a
local site, the inbox (feed, bookmarklet), edit and reorder, preview, test send to a real SMTP
server, schedule, the dashboard, a second browser's stale save, axe-core scans and screenshots.

Screenshots go to $NEWSLETTER_TEST_ARTIFACTS (or a folder under the test's tmp_path)."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from admin_support import EDITOR, PASSWORD, article_site, served_config
from browser_support import NEEDS_CHROMIUM
from mail_servers import SMTPTestServer
from newsletter.issues import load_issue
from newsletter.web import serve_in_thread
from web_support import body_text, mail_to

AXE = Path(__file__).resolve().parent / "assets" / "axe.min.js"     # axe-core 4.14 (npm), MPL-2.0
pytestmark = NEEDS_CHROMIUM
TESTER = "tester@example.org"
# Read at import: conftest's isolation removes NEWSLETTER_* variables before each test runs.
ARTIFACTS = os.environ.get("NEWSLETTER_TEST_ARTIFACTS", "")
EDITED = "A summary the editor rewrote in the browser."


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Yield (config, smtp, server url, article site url): the app under waitress on a free port."""
    with SMTPTestServer() as smtp, article_site() as site:
        config, port = served_config(tmp_path, monkeypatch, smtp_port=smtp.port, feeds=[f"{site}/feed.xml"])
        with serve_in_thread(config, "127.0.0.1", port) as server:
            yield config, smtp, server.url, site


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def log_in(page, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/admin/")
    page.get_by_label("Username").fill(EDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def axe_violations(page) -> list[str]:
    """Run axe-core on the page; return its serious and critical violations, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{page.url}: {v['id']} ({v['impact']}): {v['help']} — "
            f"{[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def screenshot(page, shots: Path, name: str) -> None:
    """Save the page at 1280 and 390 px wide (full page)."""
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(150)      # let the frames lay out at the new width
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_editor_workflow_in_the_browser(workspace, browser, shots):
    from playwright.sync_api import expect

    config, smtp, base, site = workspace
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    violations: list[str] = []

    # The login page is accessible and guards everything.
    page.goto(f"{base}/admin/dashboard")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    violations += axe_violations(page)
    log_in(page, base)

    # Create an issue.
    page.get_by_role("link", name="New issue").first.click()
    violations += axe_violations(page)
    page.get_by_label("Issue id").fill("w49")
    page.get_by_label("Title").fill("Week 49")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name=re.compile("Week 49"))).to_be_visible()

    # Three articles from the local site, pasted at once.
    # (the script saves the form first: the title typed here must survive)
    page.get_by_label("Preheader").fill("Three stories and a walk")
    page.get_by_label("Links").fill(f"{site}/a1\n{site}/a2\n{site}/a3\n{site}/missing")
    with page.expect_response(lambda r: r.url.endswith("/admin/issues/w49/link")):    # one per link
        page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_label("Summary")).to_have_count(3)
    expect(page.locator(".result.added")).to_have_count(3)
    expect(page.locator(".result.failed")).to_contain_text("404")
    expect(page.get_by_label("Preheader")).to_have_value("Three stories and a walk")

    # One from the feed, through the inbox.
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("button", name="Fetch feeds").click()
    expect(page.get_by_role("link", name="Feed story")).to_be_visible()
    # The card fills in once the article is fetched in the background (htmx polls it).
    expect(page.locator(".cand .cand-blurb")).to_be_visible(timeout=20_000)
    expect(page.locator(".cand .fetch-state")).to_have_count(0)
    screenshot(page, shots, "inbox")
    violations += axe_violations(page)
    page.get_by_label("Issue for Feed story").select_option("w49")
    page.get_by_role("button", name="Add to issue: Feed story").click()
    expect(page.get_by_text("Added to issue w49")).to_be_visible()
    assert len(load_issue(config.paths.issues, "w49").items) == 4

    # The bookmarklet, clicked on an article page, puts that page in the inbox.
    bookmarklet = page.get_by_role("link", name=re.compile("^Save to")).get_attribute("href")
    assert bookmarklet.startswith("javascript:")
    page.goto(f"{site}/a1")
    article_title = page.title()
    page.evaluate(bookmarklet[len("javascript:"):])
    page.wait_for_url(re.compile(r"/admin/inbox/clip"))
    violations += axe_violations(page)
    page.get_by_role("button", name="Add to inbox").click()
    clipped = page.locator(".cand").filter(has=page.get_by_role("link", name=article_title))
    expect(clipped).to_be_visible()
    expect(clipped).to_contain_text("in issue w49")        # a1 was added to the issue above
    # Dismissing swaps the row out in place (htmx, with the page's CSRF token) and is remembered.
    # htmx is our bundled copy and running: a missing or empty file fails here, not silently later.
    assert page.evaluate("typeof htmx === 'object' && htmx.version") == "2.0.11"
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"
                              and "/dismiss" in r.url and r.status == 200):
        page.get_by_role("button", name=f"Dismiss: {article_title}").click()
    expect(clipped).to_have_count(0)
    page.reload()
    expect(page.get_by_role("link", name=article_title)).to_have_count(0)

    # Edit a summary, reorder, and see it in the preview.
    page.goto(f"{base}/admin/issues/w49")
    first_url = load_issue(config.paths.issues, "w49").items[0].url
    page.get_by_label("Summary").nth(1).fill(EDITED)
    page.get_by_role("button", name=re.compile("^Move down")).first.click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    issue = load_issue(config.paths.issues, "w49")
    assert issue.items[1].url == first_url and issue.items[0].summary == EDITED
    frame = page.frame_locator('iframe[title="Preview at 375 px"]')
    expect(frame.locator("body")).to_contain_text(EDITED)
    page.get_by_role("tab", name="Text").click()
    expect(page.get_by_label("Text part")).to_contain_text(EDITED)
    page.get_by_role("tab", name="375 px").click()

    # A note (Markdown) and a section, then drag the last item to the top by its handle.
    page.get_by_label("Note").nth(0).fill("Our *pick* of the week.")
    page.get_by_label("Section", exact=True).nth(0).fill("Picks")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    issue = load_issue(config.paths.issues, "w49")
    assert (issue.items[0].note, issue.items[0].section) == ("Our *pick* of the week.", "Picks")
    expect(frame.locator("em", has_text="pick")).to_be_visible()       # the note's Markdown, rendered
    before = [i.url for i in issue.items]
    handle = page.locator("#item-3 .drag-handle")
    expect(handle).to_be_visible()
    page.set_viewport_size({"width": 1280, "height": 4000})     # every item in view at once
    page.evaluate("window.scrollTo(0, 0)")
    with page.expect_navigation():          # the new order is saved through the form at once
        handle.hover()
        page.mouse.down()
        box = page.locator("#item-0").bounding_box()
        page.mouse.move(box["x"] + 40, box["y"] + 20, steps=8)
        page.mouse.up()
    page.set_viewport_size({"width": 1280, "height": 900})
    expect(page.get_by_text("Saved.")).to_be_visible()
    assert [i.url for i in load_issue(config.paths.issues, "w49").items] == [before[3], *before[:3]]
    screenshot(page, shots, "editor")
    page.set_viewport_size({"width": 390, "height": 900})
    page.locator(".preview-col").screenshot(path=str(shots / "editor-preview-390.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    violations += axe_violations(page)

    # A test copy reaches the SMTP server with the edited summary.
    page.get_by_label("Test address").fill(TESTER)
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text(f"Test copy sent to {TESTER}")).to_be_visible()
    (received,) = mail_to(smtp, TESTER)
    assert received["Subject"].startswith("[TEST]")
    assert EDITED in " ".join(body_text(received).split())

    # Schedule it, and see it on the dashboard.
    when = (datetime.now() + timedelta(days=2)).replace(hour=9, minute=0)
    page.get_by_label("Send at").fill(when.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#send .scheduled")).to_contain_text("send issue w49")
    page.get_by_role("link", name="Dashboard").click()
    row = page.get_by_role("row").filter(has_text="Week 49")
    expect(row.get_by_text("scheduled")).to_be_visible()
    expect(row).to_contain_text(when.strftime("%Y-%m-%d 09:00"))
    screenshot(page, shots, "dashboard")
    violations += axe_violations(page)
    from newsletter.db import get_engine
    from newsletter.subscribers.store import SubscriberStore
    SubscriberStore(get_engine(config)).add("reader@example.org", name="A Reader")
    page.get_by_role("link", name="Subscribers").click()
    expect(page.get_by_role("cell", name="reader@example.org", exact=True)).to_be_visible()
    violations += axe_violations(page)

    # A second browser session opened the issue before this one saved: it cannot overwrite.
    other = browser.new_context(viewport={"width": 390, "height": 900}).new_page()
    log_in(other, base)
    other.goto(f"{base}/admin/issues/w49")
    page.goto(f"{base}/admin/issues/w49")
    page.get_by_label("Summary").first.fill("The first session's words.")
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    other.get_by_label("Summary").first.fill("The second session's words.")
    other.get_by_role("button", name="Save").first.click()
    expect(other.get_by_role("alert")).to_contain_text("changed elsewhere")
    expect(other.get_by_label("Summary").first).to_have_value("The second session's words.")
    assert load_issue(config.paths.issues, "w49").items[0].summary == "The first session's words."

    # Regenerate a summary with another summariser (the script fills the field; Save keeps it).
    page.goto(f"{base}/admin/issues/w49")
    before = "A draft blurb to be replaced."
    page.get_by_label("Summary").nth(2).fill(before)
    page.get_by_label("Summariser").nth(2).select_option("lead")
    page.get_by_role("button", name=re.compile("^Regenerate: ")).nth(2).click()
    expect(page.locator("#item-2 .regen-status")).to_have_text("New summary from lead: not saved yet.")
    lead = page.get_by_label("Summary").nth(2).input_value()
    assert lead and lead != before
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    assert load_issue(config.paths.issues, "w49").items[2].summary == lead

    # Remove an item: it is listed under "Removed" and comes back with Restore.
    urls = [i.url for i in load_issue(config.paths.issues, "w49").items]
    page.get_by_role("button", name=re.compile("^Remove: ")).nth(1).click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    page.get_by_text("Removed (1)").click()
    expect(page.locator("#removed")).to_contain_text(urls[1])
    violations += axe_violations(page)
    page.get_by_role("button", name=re.compile("^Restore: ")).click()
    expect(page.get_by_text("Restored: ")).to_be_visible()
    expect(page.locator("#removed")).to_have_count(0)
    assert [i.url for i in load_issue(config.paths.issues, "w49").items] == [urls[0], *urls[2:], urls[1]]

    assert not violations, "\n".join(violations)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
