"""Merge fields: `{{ subscriber.name or 'there' }}`, `| default(...)` and `{% if subscriber.city %}`
evaluated per subscriber although the issue is rendered once.

At render time each such expression or block (in a template, the issue's Markdown text or the
subject) becomes a small Jinja snippet and an opaque token of the render's nonce; the snippets are
saved with the render, and personalisation evaluates them per subscriber (MergeEvaluator) into
the values that fill the tokens, like `name` or `unsubscribe_url`. A bare `subscriber.name` stays
a plain token (no snippet). Snippets only see `subscriber`; their output is text (HTML-escaped in
the HTML part), so a per-subscriber block may not hold markup. An empty field counts as missing,
so `or` and `default()` fire for a subscriber without a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from ..errors import ConfigError, RenderError
from .placeholders import field_name, text_template, token

# field_name() never writes "__", so no subscriber column can take a merge field's name.
MERGE_PREFIX = "merge__"
CACHE_MAX = 4096                    # evaluations kept per snippet (most subscribers share values)
_SIMPLE = re.compile(r"\s*subscriber\s*(?:\.\s*([a-z][a-z0-9_]*)|\[\s*(['\"])([^'\"\\]*)\2\s*\])\s*\Z")
MAX_OUTPUT = 100_000                # characters a snippet may produce (or build) for one subscriber
MAX_POWER_BITS = 4_096              # an integer `**` result larger than this is refused


class _MergeSandbox(SandboxedEnvironment):
    """The sandbox, also bounding what one operator can build: `'a' * 10**8` or `2 ** 10**8`
    would otherwise take the whole memory (or time) of the build and of every send."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                    and right * abs(left).bit_length() > MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} is too large for a merge field")
            return left ** right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                    and len(seq) * max(times, 0) > MAX_OUTPUT:
                raise SecurityError(f"a merge field may build at most {MAX_OUTPUT} characters or items")
        return left * right


# Snippets run in a sandbox (issue text is data, not code) with lenient undefined values.
_ENV = _MergeSandbox(undefined=jinja2.ChainableUndefined, autoescape=False,
                     keep_trailing_newline=True)
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
            tree = _ENV.parse(source)
            _check_loops(tree)
            template = _ENV.from_string(tree)
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
        raw = list(_ENV.lex(text))
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


# -- personalisation: evaluate the saved snippets for one subscriber ---------------------------------

class SubscriberView:
    """`subscriber` inside a snippet: its fields by attribute or key; an empty field is undefined."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def __getitem__(self, key: str) -> str:
        value = _lookup(self._values, key)
        if not value:
            raise KeyError(key)
        return value


def _lookup(values: Mapping[str, str], key: Any) -> str:
    """Return the value of field key ("city", or a column such as "First Name"), "" when absent."""
    key = str(key)
    value = values.get(key)
    if value is None:
        value = values.get(field_name(key))
    return value or ""


def _keys(tree: nodes.Template) -> tuple[str, ...] | None:
    """Return the subscriber fields a snippet reads, or None when it uses `subscriber` otherwise."""
    keys, covered = [], set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if isinstance(target, nodes.Name) and target.name == "subscriber":
            if isinstance(node, nodes.Getattr):
                keys.append(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                keys.append(node.arg.value)
            else:
                continue
            covered.add(id(target))
    for name in tree.find_all(nodes.Name):
        if name.name == "subscriber" and id(name) not in covered:
            return None
    return tuple(dict.fromkeys(keys))


def _check_loops(tree: nodes.Template) -> None:
    """Refuse a loop inside a loop: each may run 100,000 times (MAX_RANGE), so nested ones would
    hang the build and every send. Raises TemplateSyntaxError (the editor's text, shown as written)."""
    for loop in tree.find_all(nodes.For):
        for inner in loop.body:
            if isinstance(inner, nodes.For) or next(inner.find_all(nodes.For), None) is not None:
                raise jinja2.TemplateSyntaxError("a merge field may not nest one loop inside another",
                                                 loop.lineno)


def snippet_fields(source: str) -> tuple[str, ...]:
    """Return the token-safe names of the subscriber fields a snippet reads ((): none or unknown)."""
    try:
        keys = _keys(_ENV.parse(source))
    except jinja2.TemplateSyntaxError:
        return ()
    return tuple(field_name(k) for k in keys or ())


class MergeEvaluator:
    """Evaluates a render's snippets for one subscriber's values; results are cached by the values
    of the fields each snippet reads, since most subscribers share them."""

    def __init__(self, merge_fields: Iterable[tuple[str, str]]):
        self._snippets = []
        for field, source in merge_fields:
            try:
                tree = _ENV.parse(source)
            except jinja2.TemplateSyntaxError as err:
                raise ConfigError(f"merge field {source!r}: {err.message}; rebuild the issue") from err
            template = _ENV.from_string(tree)
            keys = _keys(tree)
            # The values a send passes are keyed by token-safe names (see field_name).
            fields = None if keys is None else tuple(field_name(k) for k in keys)
            self._snippets.append((field, source, template, dict(template.globals), fields, {}))

    def __bool__(self) -> bool:
        return bool(self._snippets)

    def __call__(self, values: Mapping[str, str]) -> dict[str, str]:
        """Return {field: text} of every snippet for values (token field -> value); raises RenderError."""
        out: dict[str, str] = {}
        view = None
        get = values.get
        for field, source, template, base, fields, cache in self._snippets:
            key = tuple(map(get, fields)) if fields is not None else tuple(sorted(values.items()))
            text = cache.get(key)
            if text is None:
                if view is None:
                    view = SubscriberView(values)
                context = base.copy()
                context["subscriber"] = view
                try:
                    # Template.render() without its per-call set-up: a third of the time.
                    text = "".join(template.root_render_func(template.new_context(context, shared=True)))
                except Exception as err:  # noqa: BLE001 - the editor's expression failed for this subscriber
                    raise RenderError(f"merge field {source!r} failed for "
                                      f"{values.get('email', 'a subscriber')}: {err}") from err
                if len(text) > MAX_OUTPUT:
                    raise RenderError(f"merge field {source!r} gives {len(text)} characters for "
                                      f"{values.get('email', 'a subscriber')}: at most {MAX_OUTPUT}")
                if len(cache) >= CACHE_MAX:
                    cache.clear()
                cache[key] = text
            out[field] = text
        return out
