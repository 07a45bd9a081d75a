"""Pre-send checks on real renders: clean issues pass, each kind of problem is named."""

from __future__ import annotations

import dataclasses

import pytest

from newsletter.render.checks import check_identity, check_personalised, check_rendered
from newsletter.config import NewsletterSection, config_from_dict
from newsletter.models import Issue
from render_support import NONCE, load_issue

from newsletter.render.issue import render_issue
from newsletter.render.placeholders import html_template, text_template, token

VALUES = {"name": "Ada", "email": "ada@example.net",
          "unsubscribe_url": "https://news.example.org/u/abc",
          "view_url": "https://news.example.org/v/abc"}



@pytest.fixture
def config(tmp_path):
    return config_from_dict({"newsletter": {"postal_address": "1 Example Street, Example City"}},
                            tmp_path)


@pytest.fixture
def issue():
    return load_issue("issue12.json")


@pytest.fixture
def rendered(issue, config):
    return render_issue(issue, config, nonce=NONCE)


def with_item(issue: Issue, index: int, **changes) -> Issue:
    items = list(issue.items)
    items[index] = dataclasses.replace(items[index], **changes)
    return dataclasses.replace(issue, items=tuple(items))


def only(warnings: list[str], needle: str) -> str:
    hits = [w for w in warnings if needle in w]
    assert len(hits) == 1, warnings
    return hits[0]


def test_clean_twelve_item_issue_has_no_warnings(rendered, issue):
    assert check_rendered(rendered, issue) == []


@pytest.mark.parametrize("value, warned", [("2025-03-03", False), ("next Tuesday", True),
                                           ("2025-13-01", True), ("", False)])
def test_an_issue_date_that_is_not_iso_is_named(issue, config, value, warned):
    odd = dataclasses.replace(issue, date=value)
    warnings = check_rendered(render_issue(odd, config, nonce=NONCE), odd)
    assert any("date" in w and "shown as written" in w for w in warnings) is warned


def test_item_without_summary_is_named(issue, config):
    bad = with_item(issue, 4, summary="  ")
    warnings = check_rendered(render_issue(bad, config, nonce=NONCE), bad)
    assert warnings == ["item 5 'Webb spots water vapour around a young star': no summary"]


def test_item_without_link_or_with_relative_link(issue, config):
    bad = with_item(with_item(issue, 0, url=""), 1, url="/articles/gut-viruses")
    warnings = check_rendered(render_issue(bad, config, nonce=NONCE), bad)
    only(warnings, "item 1 'Deep-sea microbes breathe metal to survive': no link")
    only(warnings, "item 2 \"A new map of the human gut's viral zoo\": link '/articles/gut-viruses' "
                   "is not an absolute http(s) URL")
    assert len(warnings) == 2  # the links in the HTML are not reported a second time


def test_image_without_alt_text_is_named(issue, config):
    bad = with_item(issue, 3, image_alt="")
    warnings = check_rendered(render_issue(bad, config, nonce=NONCE), bad)
    assert warnings == ["item 4 'Bees count to four — and maybe further': image "
                        "'https://img.example.org/w10/4.jpg' has no alt text"]


def test_relative_image_is_named(issue, config):
    bad = with_item(issue, 0, image="img/1.jpg")
    warnings = check_rendered(render_issue(bad, config, nonce=NONCE), bad)
    only(warnings, "item 1 'Deep-sea microbes breathe metal to survive': image 'img/1.jpg' is not")


def test_html_over_100_kb_is_reported(issue, config):
    many = dataclasses.replace(issue, items=issue.items * 3)
    result = render_issue(many, config, nonce=NONCE)
    assert len(result.html.encode()) > 100 * 1024
    warning = only(check_rendered(result, many), "Gmail clips")
    assert warning.startswith("HTML is ") and "KB, over 100 KB" in warning


def test_template_link_that_is_not_absolute(issue, config):
    partial = config.paths.templates / "partials" / "footer.mjml.j2"
    partial.parent.mkdir(parents=True)
    partial.write_text('<mj-section><mj-column><mj-text><a href="{{ subscriber.unsubscribe_url }}">'
                       'Unsubscribe</a> <a href="/archive">Archive</a> <a href="/archive">Again</a>'
                       '</mj-text></mj-column></mj-section>\n', encoding="utf-8")
    warnings = check_rendered(render_issue(issue, config, nonce=NONCE), issue)
    assert warnings == ["HTML: link '/archive' is not an absolute http(s) URL (2 times)"]


def test_missing_unsubscribe_link_is_reported(issue, config):
    partial = config.paths.templates / "partials" / "footer.mjml.j2"
    partial.parent.mkdir(parents=True)
    partial.write_text("<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>\n",
                       encoding="utf-8")
    warnings = check_rendered(render_issue(issue, config, nonce=NONCE), issue)
    assert warnings == ["HTML: no unsubscribe link (the template must link "
                        "{{ subscriber.unsubscribe_url }})"]


@pytest.mark.parametrize("marker", ["{{", "{%", "{#", "%%"])
def test_leftover_template_markers(rendered, issue, marker):
    broken = dataclasses.replace(rendered, text=rendered.text + f"Hello {marker} subscriber.nam\n")
    warning = only(check_rendered(broken, issue), "leftover template marker")
    assert warning.startswith(f"text: leftover template marker {marker!r} near ")


def test_percent_encoded_marker_in_href(rendered, issue):
    link = '<a href="https://x.org/%7B%7B%20name%20%7D%7D">x</a>'
    html = rendered.html.replace("</body>", link + "</body>")
    warning = only(check_rendered(dataclasses.replace(rendered, html=html), issue), "marker")
    assert warning.startswith("HTML: leftover template marker '%7B%7B'")


def test_markers_inside_css_are_not_reported(rendered, issue):
    html = rendered.html.replace("</style>", "a{#x:1}</style>", 1)
    assert check_rendered(dataclasses.replace(rendered, html=html), issue) == []


def test_token_of_another_issue(rendered, issue):
    foreign = token("fedcba9876543210", "name")
    broken = dataclasses.replace(rendered, html=rendered.html.replace("</body>", foreign + "</body>"))
    assert check_rendered(broken, issue) == [
        f"HTML: token of another issue '{foreign}' (this render's nonce is {NONCE})"]


@pytest.mark.parametrize("bad, kind", [
    (f"NLT{NONCE}__TLN", "malformed token"),
    (f"NLT{NONCE}_9lives_TLN", "malformed token"),
    (f"NLT{NONCE}_unsubscr", "broken token"),
    (f"NLT{NONCE}_First_Name_TLN", "broken token"),
])
def test_malformed_and_broken_tokens(rendered, issue, bad, kind):
    broken = dataclasses.replace(rendered, text=rendered.text + bad + "\n")
    assert only(check_rendered(broken, issue), kind).startswith(f"text: {kind}")


def test_image_without_alt_attribute_and_linked_stylesheet(rendered, issue):
    html = rendered.html.replace("</body>", '<img src="https://x.org/logo.png" width="10"></body>')
    html = html.replace("</head>", '<link rel="stylesheet" href="https://x.org/a.css"></head>')
    warnings = check_rendered(dataclasses.replace(rendered, html=html), issue)
    assert warnings == ["HTML: image 'https://x.org/logo.png' has no alt attribute",
                        "HTML: external stylesheet 'https://x.org/a.css' (inline the CSS instead)"]


def test_personalised_message_is_clean(rendered):
    html = html_template(rendered.html, NONCE).fill(VALUES)
    text = text_template(rendered.text, NONCE).fill(VALUES)
    assert check_personalised(html, text) == []


def test_personalised_check_finds_unfilled_and_broken_tokens(rendered):
    html = html_template(rendered.html, NONCE).fill(VALUES)
    warnings = check_personalised(html, rendered.text)
    assert warnings and all(w.startswith("text: unfilled token") for w in warnings)
    assert any(token(NONCE, "unsubscribe_url") in w for w in warnings)
    warnings = check_personalised(html + f"NLT{NONCE}_na", "plain {{ name }}")
    assert len(warnings) == 2
    assert warnings[0].startswith("HTML: broken token near ")
    assert warnings[0].endswith(f"</html>NLT{NONCE}_na'")
    assert warnings[1] == "text: leftover template marker '{{' near 'plain {{ name }}'"


# -- the sender's identity ------------------------------------------------------------------------

def identity(**changes) -> NewsletterSection:
    mine = {"name": "Field Notes", "sender": "Field Notes <letters@fieldnotes.eu>",
            "postal_address": "Field Notes, 4 Quay Road, Bristol BS1 4QA", "base_url": "https://news.fieldnotes.eu"}
    return NewsletterSection(**{**mine, **changes})


def test_a_real_identity_passes():
    assert check_identity(identity(), "c.toml") == []


@pytest.mark.parametrize("changes, expected", [
    ({"sender": "The Orbit Weekly <digest@example.org>"}, "newsletter.sender 'The Orbit Weekly <digest@example.org>' "
                                                          "is a placeholder address (example.org)"),
    ({"sender": "x@mail.example.com"}, "is a placeholder address (mail.example.com)"),
    ({"reply_to": "Editor <ed@example.net>"}, "newsletter.reply_to"),
    ({"base_url": "https://news.example.org"}, "newsletter.base_url 'https://news.example.org' is a placeholder"),
    ({"base_url": "http://news.fieldnotes.eu"}, "is not https: one-click unsubscribe links (RFC 8058)"),
    ({"postal_address": "  "}, "newsletter.postal_address is empty"),
])
def test_placeholder_identity_parts_are_each_named(changes, expected):
    found = check_identity(identity(**changes), "c.toml")
    assert len(found) == 1 and expected in found[0] and found[0].startswith("c.toml: "), found


def test_the_sample_config_identity_is_flagged():
    from pathlib import Path

    from newsletter.config import load_config

    config = load_config(Path(__file__).resolve().parent.parent / "config.toml")
    found = " ".join(check_identity(config.newsletter))
    assert "newsletter.sender" in found and "newsletter.base_url" in found


# -- links that no longer answer --------------------------------------------------------------------

def test_check_links_finds_404_and_unresolvable_hosts_and_follows_redirects(httpserver):
    from newsletter.config import FetchSection
    from newsletter.render.links import check_links, dead_link_warnings, link_targets

    httpserver.expect_request("/ok").respond_with_data("fine")
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    httpserver.expect_request("/moved").respond_with_data("", status=301, headers={"Location": "/ok"})
    httpserver.expect_request("/moved-to-gone").respond_with_data("", status=302, headers={"Location": "/gone"})
    httpserver.expect_request("/no-head", method="HEAD").respond_with_data("", status=405)
    httpserver.expect_request("/no-head", method="GET").respond_with_data("fine")
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    httpserver.expect_request("/members").respond_with_data("log in", status=403)
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    urls = [httpserver.url_for(p) for p in ("/ok", "/gone", "/moved", "/moved-to-gone", "/no-head", "/loop",
                                            "/members", "/broken")]
    urls.append("https://no-such-host.invalid/page")
    html = "".join(f'<a href="{u}">x</a>' for u in urls) + '<a href="mailto:a@b.org">m</a><img src="/rel">'
    assert link_targets(html) == urls
    results = check_links(link_targets(html), FetchSection(connect_timeout=3, read_timeout=3, max_redirects=3))
    assert [r.status for r in results[:5]] == [200, 404, 200, 404, 200]
    warnings = dead_link_warnings(results)
    assert warnings == [f"link {urls[1]} is dead: HTTP 404", f"link {urls[3]} is dead: HTTP 404",
                        f"link {urls[5]} is dead: more than 3 redirects", f"link {urls[7]} is dead: HTTP 500",
                        "link https://no-such-host.invalid/page is dead: host not found"]


def test_check_links_is_bounded_by_timeouts(httpserver):
    import threading
    import time

    from newsletter.config import FetchSection
    from newsletter.render.links import check_links

    release = threading.Event()

    def slow(_request):
        release.wait(5)
        from werkzeug import Response
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    try:
        results = check_links([httpserver.url_for("/slow")], FetchSection(connect_timeout=1, read_timeout=0.5))
    finally:
        release.set()
    assert time.monotonic() - started < 4
    assert results[0].problem == "no answer within 1/0.5 s"


def test_check_links_asks_a_bounded_number_at_a_time():
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from newsletter.config import FetchSection
    from newsletter.render.links import check_links

    lock, state = threading.Lock(), {"now": 0, "most": 0}

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def do_HEAD(self):  # noqa: N802 - http.server's name
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.2)
            with lock:
                state["now"] -= 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        urls = [f"http://127.0.0.1:{server.server_port}/{i}" for i in range(9)]
        results = check_links(urls, FetchSection(connect_timeout=5, read_timeout=5), parallel=3)
    finally:
        server.shutdown()
        server.server_close()
    assert [r.status for r in results] == [200] * 9
    assert state["most"] == 3
