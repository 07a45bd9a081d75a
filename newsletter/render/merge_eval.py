"""Merge fields per subscriber: MergeEvaluator runs a render's saved snippets for one subscriber's
values (cached by the fields each snippet reads); snippet_fields says which fields a snippet reads."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from jinja2 import nodes

from ..errors import ConfigError, RenderError
from .merge_sandbox import ENV, MAX_OUTPUT
from .placeholders import field_name

CACHE_MAX = 4096                    # evaluations kept per snippet (most subscribers share values)


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


def snippet_fields(source: str) -> tuple[str, ...]:
    """Return the token-safe names of the subscriber fields a snippet reads ((): none or unknown)."""
    try:
        keys = _keys(ENV.parse(source))
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
                tree = ENV.parse(source)
            except jinja2.TemplateSyntaxError as err:
                raise ConfigError(f"merge field {source!r}: {err.message}; rebuild the issue") from err
            template = ENV.from_string(tree)
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
