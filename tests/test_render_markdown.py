"""The editor's Markdown (intro, outro, item notes) through the real render: safe HTML, readable
plain text, and links and images that are http(s) only everywhere (the rest dropped and reported)."""

from __future__ import annotations

import dataclasses

import lxml.html
import pytest

from newsletter.config import config_from_dict
from newsletter.models import Issue, Item
from newsletter.render.checks import check_rendered
from newsletter.render.issue import derive_preheader, render_issue
from newsletter.render.markdown import render as markdown
from render_support import NONCE

INTRO = """Welcome to **issue 12**. This week: *three* stories and
[our reading list](https://example.org/list).

- rockets
- rivers, with a [map](https://maps.example.org/r)

Write to [the editors](mailto:editors@example.org)."""


@pytest.fixture
def config(tmp_path):
    return config_from_dict({"newsletter": {"name": "Rich Weekly", "postal_address": "1 Road, Town"}},
                            tmp_path)


def issue(**changes) -> Issue:
    items = (Item(url="https://example.org/a", title="First story", summary="The first summary.",
                  note="*Our take:* read it with the [second one](https://example.org/b)."),
             Item(url="https://example.org/b", title="Second story", summary="The second summary."))
    return dataclasses.replace(Issue(id="w12", title="Week 12", intro=INTRO, items=items,
                                     outro="That's all. **See you next week.**"), **changes)


def body(html: str):
    return lxml.html.document_fromstring(html)


def test_intro_is_markdown_in_both_parts(config):
    rendered = render_issue(issue(), config, nonce=NONCE)
    page = body(rendered.html)
    assert page.xpath("//strong[normalize-space()='issue 12']")
    assert page.xpath("//em[normalize-space()='three']")
    assert [li.text_content().strip() for li in page.xpath("//ul/li")] == ["rockets", "rivers, with a map"]
    assert page.xpath("//a[@href='https://example.org/list']/text()") == ["our reading list"]
    assert page.xpath("//a[@href='mailto:editors@example.org']/text()") == ["the editors"]
    text = rendered.text
    assert "Welcome to issue 12. This week: three stories and our reading list" in " ".join(text.split())
    assert "(https://example.org/list)" in text
    assert "\n- rockets\n- rivers, with a map (https://maps.example.org/r)\n" in text
    assert "Write to the editors (editors@example.org)." in text
    assert "**" not in text and "](" not in text


def test_note_is_shown_apart_from_the_blurb_and_outro_after_the_items(config):
    rendered = render_issue(issue(), config, nonce=NONCE)
    page = body(rendered.html)
    note = page.xpath("//div[@class='note']")
    assert len(note) == 1
    assert "Our take:" in note[0].text_content()
    assert note[0].xpath(".//a/@href") == ["https://example.org/b"]
    assert "border-left" in note[0].get("style")           # set apart, inlined for mail clients
    summary = page.xpath("//p[normalize-space()='The first summary.']")[0]
    assert summary.getnext() is note[0]                     # right after the blurb it comments on
    text = rendered.text
    assert "The first summary.\n\n| Our take: read it with the second one (https://example.org/b).\n" in text
    everything = page.text_content()
    assert everything.index("See you next week.") > everything.index("The second summary.")
    assert everything.index("See you next week.") < everything.index("Unsubscribe")
    assert text.index("See you next week.") > text.index("The second summary.")
    assert text.index("See you next week.") < text.index("Unsubscribe")


def test_raw_html_is_text_not_markup(config):
    bad = issue(intro='Hi <script>alert(1)</script> <b onclick="x()">bold</b> <img src=x onerror=y>')
    rendered = render_issue(bad, config, nonce=NONCE)
    page = body(rendered.html)
    assert not page.xpath("//script | //b | //img[@onerror] | //*[@onclick]")
    assert "<script>alert(1)</script>" in page.text_content()


@pytest.mark.parametrize("url", ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html;base64,PHNjcmlwdD4=",
                                 "vbscript:msgbox", "/relative/page", "file:///etc/passwd"])
def test_unsafe_markdown_links_are_dropped_keeping_their_words_and_reported(config, url):
    autolink = f" or <{url}>" if ":" in url else ""       # <…> is an autolink only with a scheme
    bad = issue(intro=f"Click [here]({url}){autolink} now.", outro=f"![pixel]({url})")
    rendered = render_issue(bad, config, nonce=NONCE)
    page = body(rendered.html)
    hrefs = page.xpath("//a/@href | //img/@src")
    assert not [h for h in hrefs if not h.startswith(("https://", "http://", "mailto:", "NLT"))], hrefs
    assert "Click here " in " ".join(page.text_content().split())
    warnings = check_rendered(rendered, bad)
    assert f"intro: link {url!r} is not an absolute http(s) or mailto URL: dropped" in warnings
    assert f"outro: image {url!r} is not an absolute http(s) URL: dropped" in warnings
    assert url not in rendered.text


def test_unsafe_item_link_and_image_are_dropped_and_reported(config):
    items = (Item(url="javascript:alert(document.cookie)", title="Bad link", summary="S.",
                  image="data:image/svg+xml;base64,PHN2Zz4=", image_alt="x"),
             Item(url="https://example.org/ok", title="Good", summary="S.", image="https://img.example.org/1.jpg",
                  image_alt="a picture", note="See ![x](data:image/png;base64,AAAA) and [y](javascript:z)."))
    bad = issue(items=items)
    rendered = render_issue(bad, config, nonce=NONCE)
    page = body(rendered.html)
    assert "javascript:" not in rendered.html.lower() and "data:" not in rendered.html
    assert "javascript:" not in rendered.text.lower() and "data:" not in rendered.text
    assert page.xpath("//h3[normalize-space()='Bad link']") and not page.xpath("//h3/a[normalize-space()='Bad link']")
    assert page.xpath("//img/@src") == ["https://img.example.org/1.jpg"]
    warnings = check_rendered(rendered, bad)
    assert ("item 1 'Bad link': link 'javascript:alert(document.cookie)' is not an absolute http(s) URL: "
            "dropped") in warnings
    assert ("item 1 'Bad link': image 'data:image/svg+xml;base64,PHN2Zz4=' is not an absolute http(s) URL: "
            "dropped") in warnings
    assert "item 2 'Good' note: image 'data:image/png;base64,AAAA' is not an absolute http(s) URL: dropped" in warnings
    assert "item 2 'Good' note: link 'javascript:z' is not an absolute http(s) or mailto URL: dropped" in warnings


def test_markdown_headings_sit_below_the_title_and_sections(config):
    rendered = render_issue(issue(intro="# Big news\n\nText.\n\n## Smaller"), config, nonce=NONCE)
    page = body(rendered.html)
    assert not page.xpath("//h1[normalize-space()='Big news'] | //h2[normalize-space()='Big news']")
    assert page.xpath("//h3[normalize-space()='Big news']") and page.xpath("//h4[normalize-space()='Smaller']")
    assert "Big news\n--------\n\nText." in rendered.text


def test_preheader_from_a_markdown_intro_is_plain_text():
    assert derive_preheader(issue(intro="**Bold** start with a [link](https://x.org) and `code`.")) == \
        "Bold start with a link and code."


def test_plain_text_wraps_lists_and_quotes_readably():
    long = "word " * 30
    result = markdown(f"- {long}\n- short\n\n> {long}\n\n1. one\n2. two")
    lines = result.text.splitlines()
    assert all(len(line) <= 72 for line in lines)
    assert lines[0].startswith("- word") and lines[1].startswith("  word")    # hanging indent
    assert any(line.startswith("> word") for line in lines)
    assert "1. one\n2. two" in result.text


def test_plain_text_of_a_link_whose_words_are_its_url_is_not_repeated():
    assert markdown("<https://example.org/a>").text == "https://example.org/a"


def test_plain_text_wraps_as_if_merge_fields_were_filled():
    token = "NLT0123456789abcdef_merge__0_TLN"
    text = markdown(f"Hello {token}! " + "This week we read about twelve stories in one issue. " * 2).text
    first = text.splitlines()[0]
    assert first.startswith(f"Hello {token}! This week") and len(first.replace(token, "x" * 10)) <= 72
