"""render_issue: Jinja2 → real MJML compiler → real premailer, checked on the output it produces."""

from __future__ import annotations

import dataclasses
import html as htmllib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cssutils
import lxml.html
import pytest

from newsletter.config import config_from_dict
from newsletter.errors import ConfigError, RenderError
from newsletter.models import Issue, Item
from render_support import NONCE, load_issue

from newsletter.render.html import inline_css, iri_to_uri
from newsletter.render.issue import derive_preheader, format_date, render_issue
from newsletter.render.placeholders import ANY_TOKEN, html_template, text_template, token

ADDRESS = "The Orbit Weekly\n1 Example Street\n12345 Example City"
# Selectors that exist only for particular mail clients: allowed to stay in <style>.
CLIENT_HACKS = re.compile(r"^:root$|#outlook|\.ExternalClass|\.moz-text-html|\.mj-outlook-group-fix")



@pytest.fixture
def config(tmp_path):
    """A config rooted in the test folder; its templates/ folder starts out missing."""
    return config_from_dict({"newsletter": {"name": "The Orbit Weekly", "postal_address": ADDRESS}},
                            tmp_path)


@pytest.fixture
def issue():
    return load_issue("issue12.json")


@pytest.fixture
def rendered(issue, config):
    return render_issue(issue, config, nonce=NONCE)


def doc(html: str):
    return lxml.html.document_fromstring(html)


def words(text: str) -> str:
    return " ".join(text.split())


def write_template(config, name: str, body: str) -> Path:
    path = config.paths.templates / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_twelve_items_fit_gmail_with_doctype_and_viewport(rendered, issue):
    assert len(issue.items) == 12
    assert len(rendered.html.encode("utf-8")) <= 100 * 1024
    assert rendered.html.startswith("<!DOCTYPE html>")
    viewport = doc(rendered.html).xpath("//meta[@name='viewport']/@content")
    assert viewport and "width=device-width" in viewport[0]


def test_no_web_fonts_and_no_linked_stylesheets(rendered):
    assert "fonts.googleapis.com" not in rendered.html
    assert "@import" not in rendered.html
    assert doc(rendered.html).xpath("//link[contains(@rel, 'stylesheet')]") == []


def test_subject_preheader_and_ids(rendered, issue):
    assert rendered.subject == "The Orbit Weekly: This week in science & space"
    assert rendered.issue_id == issue.id and rendered.nonce == NONCE
    assert rendered.preheader.startswith("Twelve stories we enjoyed this week")
    hidden = doc(rendered.html).xpath("//body//div")[1]  # first thing inside MJML's wrapper
    assert hidden.get("class") == "preheader"
    assert "display:none" in hidden.get("style").replace(" ", "")
    assert hidden.text_content().startswith(rendered.preheader)


def test_header_shows_name_date_title_intro(rendered):
    body = words(doc(rendered.html).body.text_content())
    assert "The Orbit Weekly · 7 March 2025" in body
    assert "This week in science & space" in body
    assert "As always, reply to this email to tell us what you think." in body
    for section in ("Science", "Space", "Technology"):
        assert doc(rendered.html).xpath(f"//h2[normalize-space()='{section}']")


def test_items_grouped_by_section_in_order(rendered, issue):
    page = doc(rendered.html)
    titles = [words(h.text_content()) for h in page.xpath("//h3")]
    expected = [item.title for _, items in issue.sections() for item in items]
    assert titles == expected
    for item in issue.items:
        links = page.xpath("//a[@href=$url]", url=iri_to_uri(item.url))
        # the title, the "Read more" button and, when there is one, the image
        assert len(links) == (3 if item.image else 2), item.title
        assert any(words(a.text_content()) == "Read more" for a in links)
        meta = " · ".join(x for x in (item.source, item.author) if x)
        assert meta in words(page.text_content())


def test_images_have_alt_and_pixel_width(rendered, issue):
    images = doc(rendered.html).xpath("//img")
    with_image = [item for item in issue.items if item.image]
    assert [img.get("src") for img in images] == [iri_to_uri(item.image) for item in with_image]
    for img, item in zip(images, with_image):
        assert img.get("alt") == item.image_alt
        assert re.fullmatch(r"\d+", img.get("width")), img.get("width")


def test_tokens_survive_and_fill_with_escaped_values(rendered):
    page = doc(rendered.html)
    for field in ("unsubscribe_url", "view_url"):
        assert page.xpath("//a[@href=$t]", t=token(NONCE, field)), field
        assert token(NONCE, field) in rendered.text
    assert token(NONCE, "email") in rendered.html and token(NONCE, "email") in rendered.text
    values = {"name": "Ada", "email": "o'brien+<x>&y@example.net",
              "unsubscribe_url": "https://news.example.org/u/abc?s=1&t=2",
              "view_url": "https://news.example.org/v/abc"}
    html = html_template(rendered.html, NONCE).fill(values)
    text = text_template(rendered.text, NONCE).fill(values)
    for body in (html, text):
        assert not ANY_TOKEN.search(body) and "NLT" not in body
    assert htmllib.escape(values["email"]) in html and values["email"] not in html
    assert values["email"] in text
    assert doc(html).xpath("//a[@href=$u]", u=values["unsubscribe_url"])
    assert f"Unsubscribe: {values['unsubscribe_url']}" in text


def test_every_link_is_absolute_or_a_subscriber_token(rendered):
    tokens = {token(NONCE, "unsubscribe_url"), token(NONCE, "view_url")}
    urls = doc(rendered.html).xpath("//a/@href | //img/@src")
    assert len(urls) >= 12 * 2
    for url in urls:
        assert url in tokens or re.match(r"https?://[^/\s]+/", url), url


def test_css_is_inlined_except_media_queries_and_client_hacks(rendered):
    page = doc(rendered.html)
    left = []
    for style in page.xpath("//style"):
        if style.get("media") not in (None, "all", "screen"):
            continue  # conditional by its media attribute, like an @media block
        for rule in cssutils.parseString(style.text or "", validate=False):
            if rule.type == rule.STYLE_RULE:
                left.append(rule.selectorText)
            else:
                assert rule.type in (rule.MEDIA_RULE, rule.COMMENT), rule.cssText
    assert all(CLIENT_HACKS.search(sel) for sel in left), left
    # the template's own rules reached the elements
    h3 = page.xpath("//h3")[0]
    assert "font-size:19px" in h3.get("style").replace(" ", "")
    meta = page.xpath("//p[@class='meta']")[0]
    assert "color:#4b5563" in meta.get("style").replace(" ", "")
    # MJML's column widths must keep !important or the inline width:100% would always win
    assert re.search(r"\.mj-column-per-68\s*\{[^}]*width:\s*68%\s*!important", rendered.html)


def test_read_more_button_keeps_accent_colours(rendered):
    buttons = [a for a in doc(rendered.html).xpath("//a") if words(a.text_content()) == "Read more"]
    assert len(buttons) == 12
    style = buttons[0].get("style").replace(" ", "")
    assert "background:#1a56db" in style and "color:#ffffff" in style


def test_light_accent_gets_dark_button_text(issue, tmp_path):
    config = config_from_dict({"newsletter": {"accent_color": "#fde047"}}, tmp_path)
    page = doc(render_issue(issue, config, nonce=NONCE).html)
    button = [a for a in page.xpath("//a") if words(a.text_content()) == "Read more"][0]
    assert "color:#111111" in button.get("style").replace(" ", "")


def test_bad_accent_colour_is_a_config_error(issue, tmp_path):
    config = config_from_dict({"newsletter": {"accent_color": "blue; x:1"}}, tmp_path)
    with pytest.raises(ConfigError, match="accent_color"):
        render_issue(issue, config)


def test_text_part_has_every_title_url_summary_and_footer(rendered, issue):
    text = rendered.text
    flat = words(text)
    assert "<" not in text and "&amp;" not in text  # plain text: no markup, no HTML escapes
    for item in issue.items:
        assert item.title in text
        assert f"\n{iri_to_uri(item.url)}\n" in text  # alone on its line, never wrapped
        assert words(item.summary) in flat
    assert ADDRESS.splitlines()[1] in text
    assert f"View in browser: {token(NONCE, 'view_url')}" in text
    assert max(len(line) for line in text.splitlines() if "://" not in line) <= 90


def test_autoescape_in_html_but_not_in_text(config):
    evil = Item(url="https://example.org/x?a=1&b=2", title="<script>alert(1)</script> & co",
                summary="Fish & <b>chips</b>", source="Src", image="https://example.org/i.png",
                image_alt='He said "hi" & <left>')
    result = render_issue(Issue(id="e", title="T", items=(evil,)), config, nonce=NONCE)
    assert "<script" not in result.html and "<b>chips" not in result.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in result.html
    page = doc(result.html)
    assert page.xpath("//img/@alt") == ['He said "hi" & <left>']
    assert set(page.xpath("//a/@href")) >= {"https://example.org/x?a=1&b=2"}
    assert "<script>alert(1)</script> & co" in result.text
    assert "Fish & <b>chips</b>" in result.text


def test_no_template_markers_or_foreign_text_left(rendered):
    for body in (rendered.html, rendered.text):
        for marker in ("{{", "{%", "{#", "%%", "%7B%7B"):
            assert marker not in body
        assert {m.group(0)[3:19] for m in ANY_TOKEN.finditer(body)} == {NONCE}


def test_cssutils_warnings_stay_out_of_the_terminal(issue, config, capfd):
    render_issue(issue, config, nonce=NONCE)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_premailer_never_fetches_linked_stylesheets():
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red }")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/x.css"
        out = inline_css(f'<html><head><link rel="stylesheet" href="{url}"><style>p {{ margin: 0 }}'
                         f'</style></head><body><p>x</p></body></html>')
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert '<p style="margin:0">x</p>' in out


def test_template_syntax_error_names_file_and_line(issue, config):
    write_template(config, "digest.mjml.j2", "<mjml>\n<mj-body>\n{{ issue.title }\n</mj-body></mjml>\n")
    with pytest.raises(ConfigError, match=r"^templates/digest\.mjml\.j2:3: unexpected '}'"):
        render_issue(issue, config)


def test_syntax_error_in_partial_names_the_partial(issue, config):
    write_template(config, "partials/footer.mjml.j2", "<mj-section>\n{% if %}\n</mj-section>\n")
    with pytest.raises(ConfigError, match=r"^templates/partials/footer\.mjml\.j2:2: "):
        render_issue(issue, config)


def test_undefined_variable_is_a_render_error_with_line(issue, config):
    write_template(config, "digest.txt.j2", "{{ issue.title }}\n\n{{ issue.no_such_field }}\n")
    with pytest.raises(RenderError, match=r"^templates/digest\.txt\.j2:3: .*no_such_field"):
        render_issue(issue, config)


def test_mjml_compile_error_is_a_render_error(issue, config):
    write_template(config, "digest.mjml.j2", "<mjml><mj-body><mj-section><mj-column>"
                   "<mj-text>{{ issue.title }}</mj-column></mj-section></mj-body></mjml>\n")
    with pytest.raises(RenderError, match=r"digest\.mjml\.j2: MJML compile error"):
        render_issue(issue, config)


def test_missing_templates_fall_back_to_the_built_in_ones(issue, config):
    write_template(config, "digest.txt.j2", "{{ issue.title }} for {{ subscriber.email }}\n")
    write_template(config, "partials/footer.mjml.j2",
                   '<mj-section><mj-column><mj-text><a href="{{ subscriber.unsubscribe_url }}">Leave'
                   "</a> {{ newsletter.name }}</mj-text></mj-column></mj-section>\n")
    result = render_issue(issue, config, nonce=NONCE)
    assert result.text == f"This week in science & space for {token(NONCE, 'email')}\n"
    page = doc(result.html)
    assert page.xpath("//a[normalize-space()='Leave']/@href") == [token(NONCE, "unsubscribe_url")]
    assert len(page.xpath("//h3")) == 12  # the rest of the email is the built-in template
    assert "View in browser" not in result.html


def test_a_template_added_later_replaces_the_built_in_one(issue, config):
    assert "View in browser" in render_issue(issue, config, nonce=NONCE).html
    write_template(config, "partials/footer.mjml.j2",
                   '<mj-section><mj-column><mj-text><a href="{{ subscriber.unsubscribe_url }}">Leave'
                   "</a></mj-text></mj-column></mj-section>\n")
    html = render_issue(issue, config, nonce=NONCE).html
    assert "View in browser" not in html and ">Leave</a>" in html


def test_missing_include_is_a_config_error(issue, config):
    write_template(config, "digest.txt.j2", "x\n{% include 'partials/nope.txt.j2' %}\n")
    with pytest.raises(ConfigError, match=r"digest\.txt\.j2:2: included template 'partials/nope"):
        render_issue(issue, config)


def test_custom_subject_format_and_bad_placeholder(issue, tmp_path):
    config = config_from_dict({"newsletter": {"name": "Orbit", "subject": "{name} ({date}): {title}"}},
                              tmp_path)
    assert render_issue(issue, config).subject == "Orbit (7 March 2025): This week in science & space"
    config = dataclasses.replace(config, newsletter=dataclasses.replace(config.newsletter,
                                                                        subject="{name} {issue}"))
    with pytest.raises(ConfigError, match=r"newsletter\.subject"):
        render_issue(issue, config)


def test_subject_is_one_line(config):
    issue = Issue(id="x", title="Line one\nBcc: victim@example.org")
    assert "\n" not in render_issue(issue, config).subject


def test_preheader_falls_back_to_first_summary_and_is_shortened():
    long = "word " * 80
    issue = Issue(id="p", title="T", items=(Item(url="https://e.org", title="a"),
                                            Item(url="https://e.org/b", title="b", summary=long)))
    pre = derive_preheader(issue)
    assert pre.endswith("…") and len(pre) <= 140 and pre.startswith("word word")
    assert derive_preheader(dataclasses.replace(issue, preheader=" Own  words ")) == "Own words"
    assert derive_preheader(Issue(id="e", title="T")) == ""


def test_international_urls_become_the_same_ascii_urls_in_both_parts(config):
    item = Item(url="https://bücher.example/straße Ä?q=ü&x=%20", title="IRI", summary="s",
                image="https://bücher.example/bild ä.png", image_alt="Bild")
    result = render_issue(Issue(id="i", title="T", items=(item,)), config, nonce=NONCE)
    uri = "https://xn--bcher-kva.example/stra%C3%9Fe%20%C3%84?q=%C3%BC&x=%20"
    assert doc(result.html).xpath("//a/@href")[0] == uri
    assert doc(result.html).xpath("//img/@src") == ["https://xn--bcher-kva.example/bild%20%C3%A4.png"]
    assert f"\n{uri}\n" in result.text
    assert iri_to_uri("https://example.org/a?b=c#d") == "https://example.org/a?b=c#d"


def test_date_formats():
    assert format_date("2025-03-07", "en") == "7 March 2025"
    assert format_date("2025-03-07", "de") == "2025-03-07"
    assert format_date("", "en") == ""
    assert format_date("spring", "en") == "spring"


def test_bad_nonce_is_refused(issue, config):
    with pytest.raises(RenderError, match="nonce"):
        render_issue(issue, config, nonce="NOT-HEX")


def test_empty_issue_still_renders(config):
    result = render_issue(Issue(id="empty", title="Nothing yet"), config, nonce=NONCE)
    assert "Nothing yet" in result.html and "Nothing yet" in result.text
    assert token(NONCE, "unsubscribe_url") in result.html
