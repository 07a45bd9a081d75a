"""The editor's text in one render (intro, outro, item notes): merge fields become tokens, then
Markdown becomes safe HTML and plain text; the `markdown` and `markdown_text` template filters."""

from __future__ import annotations

from typing import Any

import jinja2
from markupsafe import Markup

from ..models import Issue
from .markdown import WIDTH, RichText, is_web_url, render
from .merge import MergeFields
from .placeholders import ANY_TOKEN

TEXTS_VAR = "_texts"        # the render context's IssueTexts


class IssueTexts:
    """Markdown texts of one render, converted once each; collects what was dropped as warnings."""

    def __init__(self, merge: MergeFields):
        self.merge = merge
        self.warnings: list[str] = []
        self._done: dict[tuple[str, int], RichText] = {}
        self._merged: dict[str, str] = {}       # source -> source with merge-field tokens
        self._where: dict[str, str] = {}

    def prepare(self, issue: Issue) -> None:
        """Name the issue's texts (for warnings) and convert them, so each problem is reported once."""
        named = [(issue.intro, "intro"), (issue.outro, "outro")]
        named += [(item.note, f"item {n} {item.title.strip() or '(untitled)'!r} note")
                  for n, item in enumerate(issue.items, start=1)]
        for source, where in named:
            if source.strip():
                self._where.setdefault(source, where)
                self.rich(source)

    def rich(self, source: str, width: int = WIDTH) -> RichText:
        """Return source (Markdown with merge fields) rendered for this issue, wrapped at width."""
        key = (source, width)
        done = self._done.get(key)
        if done is None:
            where = self._where.get(source, "template text")
            merged = self._merged.get(source)
            if merged is None:
                merged = self._merged[source] = self.merge.text(source, where)
            done = self._done[key] = render(merged, width=width, keep=self._is_token)
            if width == WIDTH:
                self.warnings += [f"{where}: {kind} {url!r} is not an absolute http(s)"
                                  f"{'' if kind == 'image' else ' or mailto'} URL: dropped"
                                  for kind, url in done.dropped]
        return done

    def _is_token(self, url: str) -> bool:
        """Return True when url is one per-subscriber token of this render (filled at send time)."""
        match = ANY_TOKEN.fullmatch(url.strip())
        return bool(match) and self.merge.nonce in url

    def plain(self, source: str) -> str:
        """Return source as one line of plain text, merge fields at their fallbacks (for previews)."""
        return " ".join(render(self.merge.anonymous(source), width=10_000, urls=False).text.split())


@jinja2.pass_context
def markdown_filter(context: jinja2.runtime.Context, source: Any) -> Markup:
    """Template filter: the Markdown source as safe HTML (raw HTML off, unsafe links dropped)."""
    texts: IssueTexts = context[TEXTS_VAR]
    return Markup(texts.rich(str(source or "")).html)


@jinja2.pass_context
def markdown_text_filter(context: jinja2.runtime.Context, source: Any, prefix: str = "") -> str:
    """Template filter: the Markdown source as plain text wrapped at 72 columns, each line after prefix."""
    texts: IssueTexts = context[TEXTS_VAR]
    text = texts.rich(str(source or ""), WIDTH - len(prefix)).text
    return "\n".join((prefix + line) if line else prefix.rstrip() for line in text.split("\n"))


__all__ = ["IssueTexts", "TEXTS_VAR", "is_web_url", "markdown_filter", "markdown_text_filter"]
