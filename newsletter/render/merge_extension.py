"""A Jinja extension that finds the per-subscriber parts of a template at compile time: each
`{{ expression on subscriber }}` and `{% if …subscriber… %} … {% endif %}` becomes a call that
registers it as a merge field (merge.MergeFields.add) and writes its token, so it is evaluated per
subscriber, not once. A bare `{{ subscriber.name }}` is left alone (a plain token)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator

import jinja2
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

from .merge import simple_field

MERGE_CALL = "_merge"               # the context function the rewritten templates call
_MARKUP = re.compile(r"<[A-Za-z/!]")


class MergeFieldExtension(Extension):
    """Rewrites `{{ expr on subscriber }}` and `{% if …subscriber… %} … {% endif %}` in a template
    into `{{ _merge(source, "file:line") }}`, so each is evaluated per subscriber, not once."""

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        """Return the template's tokens with the per-subscriber parts replaced by _merge calls."""
        autoescape = self.environment.autoescape
        is_html = bool(autoescape(stream.name) if callable(autoescape) else autoescape)
        tokens = iter(stream)
        for tok in tokens:
            if tok.type == "variable_begin":
                body = _until(tokens, "variable_end")
                expression = _source(body[:-1])
                if _uses_subscriber(body) and simple_field(expression) is None:
                    yield from _call(tok.lineno, "{{ " + expression + " }}", f"{stream.name}:{tok.lineno}")
                else:
                    yield tok
                    yield from body
            elif tok.type == "block_begin":
                tag = _until(tokens, "block_end")
                if tag and tag[0].test("name:if") and _uses_subscriber(tag):
                    block = [tok, *tag, *_until_endif(tokens)]
                    source = _block_source(block, is_html, stream)
                    yield from _call(tok.lineno, source, f"{stream.name}:{tok.lineno}")
                else:
                    yield tok
                    yield from tag
            else:
                yield tok


def _until(tokens: Iterator[Token], kind: str) -> list[Token]:
    """Return the tokens up to and including the next one of kind."""
    out = []
    for tok in tokens:
        out.append(tok)
        if tok.type == kind:
            break
    return out


def _until_endif(tokens: Iterator[Token]) -> list[Token]:
    """Return the tokens up to and including the {% endif %} that closes an open {% if %}."""
    out, depth = [], 1
    for tok in tokens:
        out.append(tok)
        if tok.type != "block_begin":
            continue
        tag = _until(tokens, "block_end")
        out += tag
        if tag and tag[0].test("name:if"):
            depth += 1
        elif tag and tag[0].test("name:endif"):
            depth -= 1
            if depth == 0:
                break
    return out


def _uses_subscriber(tokens: list[Token]) -> bool:
    """Return True when the tokens name the variable `subscriber` (not an attribute so called)."""
    prev = None
    for tok in tokens:
        if tok.type == "name" and tok.value == "subscriber" and (prev is None or prev.type != "dot"):
            return True
        prev = tok
    return False


_TIGHT_BEFORE = {"dot", "rparen", "rbracket", "comma"}
_TIGHT_AFTER = {"dot", "lparen", "lbracket"}


def _source(tokens: list[Token]) -> str:
    """Return Jinja source for the expression tokens (spacing normalised)."""
    out, prev = [], None
    for tok in tokens:
        if tok.type in ("string", "integer", "float"):
            text = repr(tok.value)
        else:
            text = str(tok.value)
        call = tok.type in ("lparen", "lbracket") and prev is not None and \
            prev.type in ("name", "rparen", "rbracket", "string")
        if prev is not None and tok.type not in _TIGHT_BEFORE and prev.type not in _TIGHT_AFTER and not call:
            out.append(" ")
        out.append(text)
        prev = tok
    return "".join(out)


def _block_source(block: list[Token], is_html: bool, stream: TokenStream) -> str:
    """Return the Jinja source of a captured block; in an HTML template its text is unescaped
    (the value is escaped again when filled) and markup is refused (it would show as text)."""
    out, i = [], 0
    while i < len(block):
        tok = block[i]
        if tok.type == "data":
            if is_html and _MARKUP.search(tok.value):
                raise jinja2.TemplateSyntaxError(
                    "a per-subscriber {% if subscriber… %} block may hold text and merge fields only, "
                    "not markup (it is filled in as text): put the tags outside the block",
                    tok.lineno, stream.name, stream.filename)
            out.append(html.unescape(tok.value) if is_html else tok.value)
            i += 1
            continue
        end = "variable_end" if tok.type == "variable_begin" else "block_end"
        j = i + 1
        while block[j].type != end:
            j += 1
        opener, closer = ("{{ ", " }}") if end == "variable_end" else ("{% ", " %}")
        out.append(opener + _source(block[i + 1:j]) + closer)
        i = j + 1
    return "".join(out)


def _call(lineno: int, source: str, where: str) -> list[Token]:
    """Return the tokens of `{{ _merge(source, where) }}`."""
    return [Token(lineno, "variable_begin", "{{"), Token(lineno, "name", MERGE_CALL),
            Token(lineno, "lparen", "("), Token(lineno, "string", source), Token(lineno, "comma", ","),
            Token(lineno, "string", where), Token(lineno, "rparen", ")"), Token(lineno, "variable_end", "}}")]
