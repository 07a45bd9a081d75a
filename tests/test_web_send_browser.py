"""Send now in Debian's chromium: the editor's button, the confirmation naming the list and the
recipients, a double click on the confirm button, the progress panel following the send to the
end, each reader's mail arriving once at a real SMTP server, the refused address listed with its
reply, the dashboard's counts, axe-core scans and screenshots at 1280 and 390 px."""

from __future__ import annotations

import re

import pytest

from admin_support import READERS, REFUSED, article_site, built_issue, readers, refuse_one, served_config
from mail_servers import SMTPTestServer
from newsletter.web import serve_in_thread
from browser_support import NEEDS_CHROMIUM
from test_web_admin_browser import axe_violations, log_in, screenshot, shots  # noqa: F401
from web_support import mail_to

pytestmark = NEEDS_CHROMIUM


@pytest.fixture
def sending(tmp_path, monkeypatch):
    """Yield (config, smtp, server url): four readers (one refused), issue w1 built, 1 message a second."""
    with SMTPTestServer(refuse_one) as smtp, article_site() as site:
        config, port = served_config(tmp_path, monkeypatch, smtp_port=smtp.port, rate_per_second=1)
        readers(config)
        built_issue(config, site, "w1", "Week one")
        with serve_in_thread(config, "127.0.0.1", port) as server:
            yield config, smtp, server.url


def test_send_now_in_the_browser(sending, browser, shots):  # noqa: F811 - pytest fixtures
    from playwright.sync_api import expect

    config, smtp, base = sending
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    violations: list[str] = []
    log_in(page, base)

    page.goto(f"{base}/admin/issues/w1")
    page.get_by_role("link", name="Send now").click()
    who = page.locator(".send-who")
    expect(who).to_contain_text("goes to list default: 4 recipients")
    violations += axe_violations(page)
    screenshot(page, shots, "send-confirm")
    page.get_by_label("Type w1 to confirm").fill("w1")
    page.get_by_role("button", name="Send to 4 recipients").dblclick()     # twice, on purpose

    phase = page.locator("#send-status [data-field=phase]")
    expect(phase).to_have_text("running")
    expect(page.get_by_role("progressbar", name="Send progress")).to_be_visible()
    expect(page.locator("#send-status [data-field=summary]")).to_contain_text("of 4 done")   # polled
    violations += axe_violations(page)
    screenshot(page, shots, "send-progress")
    expect(phase).to_have_text("finished", timeout=30_000)
    expect(page.locator('[data-count="sent"]')).to_have_text("3")
    row = page.get_by_role("row").filter(has_text=REFUSED)
    expect(row).to_contain_text("bounced")
    expect(row).to_contain_text("recipient")
    expect(row).to_contain_text("550 5.1.1 <b>No such user</b> here")     # shown as text, not markup
    violations += axe_violations(page)
    screenshot(page, shots, "send-report")
    for address in READERS:
        assert len(mail_to(smtp, address)) == 1, address
    assert mail_to(smtp, REFUSED) == []

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("row").filter(has_text="Week one")).to_contain_text(
        "3 delivered, 1 bounced, 0 unsubscribed")
    page.goto(f"{base}/admin/issues/w1")
    expect(page.get_by_role("link", name=re.compile("Delivery report: 1 failure"))).to_be_visible()
    page.locator("#send").screenshot(path=str(shots / "send-editor-panel-1280.png"))
    violations += axe_violations(page)

    assert not violations, "\n".join(violations)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
