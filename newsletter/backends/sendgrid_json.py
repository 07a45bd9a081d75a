"""SendGrid personalizations as JSON text: a thousand a call, written without a dict per recipient."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring as _enc  # the C encoder json.dumps uses
from operator import itemgetter
from typing import Any

from ..models import Recipient
from ..personalize.mime import html_escape
from .payloads import Templated


def contact(name: str, addr: str) -> dict[str, str]:
    """Return a SendGrid address object."""
    return {"email": addr, "name": name} if name else {"email": addr}


def personalizations(chunk: Sequence[Recipient], all_headers: list[dict[str, str]], t: Templated,
                     key: str, vary: list[str], same_subject: bool) -> str:
    """Return the personalizations of chunk (to, substitutions, headers) as comma-separated JSON objects.

    t holds the chunk's substitution columns, key their name prefix, vary the headers that
    differ per recipient. Written through format strings made once per chunk rather than as
    dicts through json.dumps: the object keys are the same for every recipient, so only the
    values are written per recipient, and the text is what json.dumps would write.
    """
    raw = [f for _, f, esc in t.columns if not esc]
    escaped = [f for _, f, esc in t.columns if esc]
    subs = ([f"{key}_{var}_SLN" for var, _, esc in t.columns if not esc]
            + [f"{key}_{var}_SLN" for var, _, esc in t.columns if esc])
    tail = ""
    if subs:
        tail += ',"substitutions":{' + ",".join(f'{_pct(_enc(n))}:"%s"' for n in subs) + "}"
    if vary:
        tail += ',"headers":{' + ",".join(f'{_pct(_enc(n))}:"%s"' for n in vary) + "}"
    if not same_subject:
        tail += ',"subject":"%s"'
    named, unnamed = '{"to":[{"email":"%s","name":"%s"}]' + tail + "}", '{"to":[{"email":"%s"}]' + tail + "}"
    get_raw, get_vary = _getter(raw), _getter(vary)
    forms: list[str] = []                    # each recipient's format string, in chunk order
    flat: list[str] = []                     # the values its %s take, one after the other
    for r, h in zip(chunk, all_headers):
        values = r.values
        try:
            args = get_raw(values)
        except KeyError:                      # a field this recipient lacks is empty
            args = tuple([values.get(f, "") for f in raw])
        if escaped:
            args += tuple([html_escape(values.get(f, "")) for f in escaped])
        try:
            args += get_vary(h)
        except KeyError:                      # a header this recipient lacks is left out of its object
            forms.append(_pct(_personalization(r, h, dict(zip(subs, args)), vary, same_subject)))
            continue
        name = values.get("name", "")
        if name:
            forms.append(named)
            flat += (r.email, name)
        else:
            forms.append(unnamed)
            flat.append(r.email)
        flat += args
        if not same_subject:
            flat.append(h["Subject"])
    return ",".join(forms) % _encode_strings(flat)


def _encode_strings(values: list[str]) -> tuple[str, ...]:
    """Return each string as JSON writes it between its quotes (json.dumps, ensure_ascii=False).

    JSON escapes only quotes, backslashes and control characters, and isprintable() is False
    for every control character: when the chunk's values hold none of them (almost always),
    they go in as they are, and the one check over all of them is cheaper than encoding each.
    """
    joined = "".join(values)                  # also a TypeError unless every value is a string
    if '"' not in joined and "\\" not in joined and joined.isprintable():
        return tuple(values)
    return tuple([_enc(v)[1:-1] for v in values])


def _personalization(r: Recipient, h: dict[str, str], substitutions: dict[str, str], vary: list[str],
                     same_subject: bool) -> str:
    """Return one personalization through json.dumps (for a recipient without every varying header)."""
    p: dict[str, Any] = {"to": [contact(r.values.get("name", ""), r.email)]}
    if substitutions:
        p["substitutions"] = substitutions
    if vary:
        p["headers"] = {k: h[k] for k in vary if k in h}
    if not same_subject:
        p["subject"] = h["Subject"]
    return json.dumps(p, ensure_ascii=False, separators=(",", ":"))


def _getter(keys: list[str]) -> Callable[[Mapping[str, str]], tuple[str, ...]]:
    """Return a function giving the values of keys in a mapping as a tuple (KeyError when one is missing)."""
    if len(keys) > 1:
        return itemgetter(*keys)
    if keys:
        (only,) = keys
        return lambda m: (m[only],)
    return lambda m: ()


def _pct(text: str) -> str:
    """Return text safe in a %-format string."""
    return text.replace("%", "%%")
