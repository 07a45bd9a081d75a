"""Merge fields: `{{ subscriber.name or 'there' }}`, `| default(...)` and `{% if subscriber.city %}`
evaluated per subscriber although the issue is rendered once.

At render time each such expression or block (in a template, the issue's Markdown text or the
subject) becomes a small Jinja snippet and an opaque token of the render's nonce; the snippets are
saved with the render, and personalisation evaluates them per subscriber (merge_eval.py) into
the values that fill the tokens, like `name` or `unsubscribe_url`. A bare `subscriber.name` stays
a plain token (no snippet). Snippets only see `subscriber` and run in a sandbox
(merge_sandbox.py); their output is text (HTML-escaped in the HTML part), so a per-subscriber
block may not hold markup. An empty field counts as missing, so `or` and `default()` fire for a
subscriber without a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import jinja2
from jinja2.meta import find_undeclared_variables

from ..errors import ConfigError, RenderError
from .merge_eval import MergeEvaluator, SubscriberView
from .merge_sandbox import ENV, check_loops
from .placeholders import field_name, text_template, token

# field_name() never writes "__", so no subscriber column can take a merge field's name.
MERGE_PREFIX = "merge__"
_SIMPLE = re.compile(r"\s*subscriber\s*(?:\.\s*([a-z][a-z0-9_]*)|\[\s*(['\"])([^'\"\\]*)\2\s*\])\s*\Z")


_SAMPLE = {"name": "Sample Reader", "email": "reader@example.com",
           "unsubscribe_url": "https://example.com/u/x", "view_url": "https://example.com/archive/x"}


def simple_field(expression: str) -> str | None:
    """Return the field of a bare `subscriber.x` / `subscriber['X']` expression, else None."""
    match = _SIMPLE.match(expression)
    if not match:
        return None
    return match.group(1) or field_name(match.group(3))


class MergeFields:
    """The merge-field snippets of one render: add() turns each into a token of the nonce."""

    def __init__(self, nonce: str):
        self.nonce = nonce
        self.snippets: list[tuple[str, str]] = []       # (field, source), saved with the render
        self.warnings: list[str] = []
        self._fields: dict[str, str] = {}              # source -> field

    def add(self, source: str, where: str) -> str:
        """Return the token standing for snippet source (written at where, for messages).

        Raises ConfigError when the snippet is not valid Jinja. A snippet that uses names other
        than `subscriber`, or fails for a subscriber without fields, is kept with a warning.
        """
        field = self._fields.get(source)
        if field is not None:
            return token(self.nonce, field)
        try:
            tree = ENV.parse(source)
            check_loops(tree)
            template = ENV.from_string(tree)
        except jinja2.TemplateSyntaxError as err:
            raise ConfigError(f"{where}: merge field {source!r}: {err.message}") from err
        except (ValueError, RecursionError, MemoryError, OverflowError) as err:
            # e.g. an integer literal too long to compile: the editor's mistake, one line.
            raise ConfigError(f"{where}: merge field {source!r}: {err}") from err
        others = sorted(find_undeclared_variables(tree) - {"subscriber"})
        if others:
            self.warnings.append(f"{where}: merge field {source!r} uses {', '.join(others)}: only "
                                 "`subscriber` is known per subscriber, so it is empty there")
        for values in ({}, _SAMPLE):
            try:
                template.render(subscriber=SubscriberView(values))
            except Exception as err:  # noqa: BLE001 - any failure of the editor's expression is reported
                self.warnings.append(f"{where}: merge field {source!r} fails: {err}")
                break
        field = self._fields[source] = f"{MERGE_PREFIX}{len(self.snippets)}"
        self.snippets.append((field, source))
        return token(self.nonce, field)

    def expression(self, source: str, where: str) -> str:
        """Return the token for a `{{ … }}` expression: a plain field token when it is bare."""
        field = simple_field(source)
        if field is not None:
            return token(self.nonce, field)
        return self.add("{{ " + source.strip() + " }}", where)

    def text(self, text: str, where: str) -> str:
        """Return the editor's text with each `{{ … }}` and `{% if/for %} … {% end… %}` replaced by
        its token. Text that is not valid Jinja is returned as written, with a warning."""
        if "{{" not in text and "{%" not in text:
            return text
        try:
            return "".join(self._segments(text, where))
        except (jinja2.TemplateSyntaxError, ConfigError) as err:
            message = err.message if isinstance(err, jinja2.TemplateSyntaxError) else str(err)
            self.warnings.append(f"{where}: not a valid merge field ({message}); shown as written")
            return text

    def _segments(self, text: str, where: str) -> Iterator[str]:
        """Yield text's parts, with each merge field or block replaced by its token."""
        raw = list(ENV.lex(text))
        i = 0
        while i < len(raw):
            _line, kind, value = raw[i]
            if kind == "variable_begin":
                end = _index(raw, i, "variable_end")
                yield self.expression("".join(v for _, _, v in raw[i + 1:end]), where)
                i = end + 1
            elif kind == "block_begin" and _tag(raw, i) in ("if", "for"):
                end = _block_end(raw, i, _tag(raw, i))
                yield self.add("".join(v for _, _, v in raw[i:end + 1]), where)
                i = end + 1
            else:
                yield value
                i += 1

    def anonymous(self, text: str) -> str:
        """Return text with its merge fields evaluated for nobody (their fallbacks: "Hi there")."""
        if "{{" not in text and "{%" not in text:
            return text
        probe = MergeFields(self.nonce)
        filled = probe.text(text, "")
        try:
            values = MergeEvaluator(probe.snippets)({})
        except RenderError:
            values = {}
        return text_template(filled, self.nonce).fill(values)


def _tag(raw: list[tuple[int, str, str]], start: int) -> str:
    """Return the tag name of the block that begins at raw[start] ("" when there is none)."""
    for _line, kind, value in raw[start + 1:]:
        if kind == "whitespace":
            continue
        return value if kind == "name" else ""
    return ""


def _index(raw: list[tuple[int, str, str]], start: int, kind: str) -> int:
    """Return the index of the first token of kind after start; raises TemplateSyntaxError."""
    for i in range(start + 1, len(raw)):
        if raw[i][1] == kind:
            return i
    raise jinja2.TemplateSyntaxError(f"missing {kind.replace('_', ' ')}", raw[start][0])


def _block_end(raw: list[tuple[int, str, str]], start: int, tag: str) -> int:
    """Return the index of the block_end that closes the {% end<tag> %} matching raw[start]."""
    depth, i = 0, start
    while i < len(raw):
        if raw[i][1] == "block_begin":
            name = _tag(raw, i)
            depth += name == tag
            depth -= name == f"end{tag}"
            close = _index(raw, i, "block_end")
            if depth == 0:
                return close
            i = close
        i += 1
    raise jinja2.TemplateSyntaxError(f"{{% {tag} %}} without {{% end{tag} %}}", raw[start][0])
