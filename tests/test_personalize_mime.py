"""The quoted-printable splice: any body and any values decode back exactly, in lines of ≤ 76."""

from __future__ import annotations

import quopri

import pytest
from hypothesis import given, settings, strategies as st

from newsletter.errors import ConfigError
from newsletter.personalize.mime import QPTemplate, check_header, crlf, encode_phrase, html_escape, qp
from newsletter.render.placeholders import html_template, text_template, token

NONCE = "0123456789abcdef"
FIELDS = ("name", "email", "unsubscribe_url", "view_url")
# Text with the characters that stress QP: '=', spaces and tabs before line ends, long lines, non-ASCII.
# Runs of 60 to 80 plain characters make b2a_qp end a line right at (or near) its 76 limit.
pieces = st.one_of(st.sampled_from(list('ab =\t."\n\r') + ["é", "€", "日", " \n", "=\r\n"]),
                   st.integers(60, 80).map(lambda n: "x" * n))
chunks = st.lists(pieces, max_size=30).map("".join)
values = st.one_of(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=120),
                   st.integers(60, 80).map(lambda n: "v" * n), st.integers(20, 30).map(lambda n: "&" * n))


def check_lines(encoded: bytes) -> None:
    """Fail unless every line ends in CRLF and is at most 76 characters."""
    assert encoded.count(b"\n") == encoded.count(b"\r\n")
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))


@settings(max_examples=500, deadline=None)
@given(texts=st.lists(chunks, min_size=1, max_size=6), fields=st.lists(st.sampled_from(FIELDS), max_size=5),
       vals=st.fixed_dictionaries({f: values for f in FIELDS}), html=st.booleans())
def test_splice_decodes_to_the_filled_body(texts, fields, vals, html):
    body = texts[0]
    for field, text in zip(fields, texts[1:] + [""] * len(fields)):
        body += token(NONCE, field) + text
    template = QPTemplate(body, NONCE, html_escape if html else None)
    encoded = template.fill(vals)
    check_lines(encoded)
    # Line ends are made CRLF in the body and in each value on its own.
    expected = (html_template if html else text_template)(crlf(body), NONCE).fill(
        {k: crlf(v) for k, v in vals.items()})
    assert quopri.decodestring(encoded).decode("utf-8") == expected


@given(st.binary(max_size=400))
def test_qp_lines_are_short_and_crlf(data):
    encoded = qp(data)
    check_lines(encoded)
    assert quopri.decodestring(encoded) == crlf(data.decode("latin-1")).encode("latin-1")


def test_token_of_another_issue_is_refused():
    with pytest.raises(ValueError, match="another issue"):
        QPTemplate(f"hi {token('fedcba9876543210', 'name')}", NONCE)


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nBcc: x@example.com"])
def test_check_header_refuses_line_breaks(value):
    with pytest.raises(ConfigError, match="header X-Test"):
        check_header("X-Test", value)


def test_phrases_are_quoted_or_encoded():
    assert encode_phrase("Plain Name") == "Plain Name"
    assert encode_phrase('Smith, "J"') == '"Smith, \\"J\\""'
    assert encode_phrase("Zoë").startswith("=?utf-8?")
