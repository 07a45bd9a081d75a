"""The editor's Markdown (intro, outro, item notes) → safe HTML and readable plain text.

markdown-it-py with the CommonMark rules, raw HTML off (it shows as text) and ~~strikethrough~~.
Links must be http(s) or mailto and images http(s): anything else (javascript:, data:, relative
paths) is dropped — a link keeps its words, an image goes — and reported. Headings start at <h3>,
below the issue title and the section names.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from .placeholders import ANY_TOKEN

WIDTH = 72
TOKEN_WIDTH = 10            # how wide a per-subscriber value is taken to be when wrapping
_HEADING_SHIFT = 2
_PRIVATE = 0xF0000          # Unicode plane 15 (private use): never in an editor's text
_STAND_IN = re.compile("([\U000F0000-\U000FFFFD])\\1*")


class _Parser(MarkdownIt):
    """CommonMark without raw HTML; every link is parsed, so that a bad one can be reported."""

    def validateLink(self, url: str) -> bool:  # noqa: N802 - markdown-it's name
        """Accept every URL here: render() drops (and reports) the ones that are not allowed."""
        return True


_MD = _Parser("commonmark", {"html": False, "typographer": False}).enable("strikethrough")


def is_web_url(url: str) -> bool:
    """Return True for an absolute http(s) URL with a host (what links and images may point to)."""
    parts = urlsplit(url.strip())
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def is_link_url(url: str) -> bool:
    """Return True for a URL a link may have: http(s) with a host, or mailto with an address."""
    url = url.strip()
    if url[:7].lower() == "mailto:":
        return "@" in url
    return is_web_url(url)


@dataclass(frozen=True)
class RichText:
    """One Markdown text rendered: safe HTML, plain text lines (unwrapped), what was dropped."""

    html: str
    text: str
    dropped: tuple[tuple[str, str], ...] = field(default=())   # ("link" | "image", URL) left out


def render(source: str, keep: Callable[[str], bool] = lambda url: False, width: int = WIDTH,
           urls: bool = True) -> RichText:
    """Return source rendered to HTML and to plain text wrapped at width columns (links as
    "words (url)", or their words only when urls is False).

    keep(url) may allow a URL that is not http(s)/mailto (a per-subscriber token filled in later).
    """
    tokens = _MD.parse(source or "")
    dropped = _sanitize(tokens, keep)
    html = _MD.renderer.render(tokens, _MD.options, {})
    text = "\n".join(_blocks(SyntaxTreeNode(tokens).children, width, urls)).strip("\n")
    return RichText(html=html.strip(), text=text, dropped=tuple(dropped))


def _sanitize(tokens: list[Token], keep: Callable[[str], bool]) -> list[tuple[str, str]]:
    """Drop disallowed links (keeping their words) and images in place, shift headings; return
    what was dropped as ("link" | "image", URL) pairs."""
    dropped: list[tuple[str, str]] = []
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(6, int(tok.tag[1]) + _HEADING_SHIFT)}"
        if tok.type != "inline" or not tok.children:
            continue
        children, open_links = [], []
        for child in tok.children:
            if child.type == "link_open":
                href = str(child.attrGet("href") or "")
                good = is_link_url(href) or keep(href)
                # A bad <autolink> goes whole: its words are the URL.
                open_links.append("keep" if good else "drop" if child.markup == "autolink" else "unlink")
                if not good:
                    dropped.append(("link", href))
                    continue
            elif child.type == "link_close":
                if open_links.pop() != "keep":
                    continue
            elif "drop" in open_links:
                continue
            elif child.type == "image":
                src = str(child.attrGet("src") or "")
                if not (is_web_url(src) or keep(src)):
                    dropped.append(("image", src))
                    continue
            children.append(child)
        tok.children = children
    return dropped


# -- plain text ---------------------------------------------------------------------------------------

def _blocks(nodes: list[SyntaxTreeNode], width: int, urls: bool) -> list[str]:
    """Return the lines of a sequence of blocks, a blank line between blocks (none in tight lists)."""
    out: list[str] = []
    for node in nodes:
        lines = _block(node, width, urls)
        if not lines:
            continue
        if out and not (node.type == "paragraph" and node.hidden):
            out.append("")
        out += lines
    return out


def _block(node: SyntaxTreeNode, width: int, urls: bool) -> list[str]:
    """Return the lines of one block node."""
    kind = node.type
    if kind == "paragraph":
        return _wrap(_inline(node.children[0], urls) if node.children else "", width)
    if kind == "heading":
        lines = _wrap(_inline(node.children[0], urls) if node.children else "", width)
        return lines + ["-" * max(len(line) for line in lines)] if lines else []
    if kind in ("bullet_list", "ordered_list"):
        number = int(node.attrs.get("start", 1) or 1)
        tight = all(c.hidden for item in node.children for c in item.children if c.type == "paragraph")
        out: list[str] = []
        for item in node.children:
            marker = "- " if kind == "bullet_list" else f"{number}. "
            number += 1
            lines = _blocks(item.children, width - len(marker), urls) or [""]
            if out and not tight:
                out.append("")
            out.append(marker + lines[0])
            out += [(" " * len(marker) + line) if line else "" for line in lines[1:]]
        return out
    if kind == "blockquote":
        return [("> " + line) if line else ">" for line in _blocks(node.children, width - 2, urls)]
    if kind in ("code_block", "fence"):
        return ["    " + line for line in node.content.rstrip("\n").splitlines()]
    if kind == "hr":
        return ["* * *"]
    return _blocks(node.children, width, urls)


def _inline(node: SyntaxTreeNode, urls: bool = True) -> str:
    """Return the text of an inline node: emphasis marks dropped, links as "words (url)"."""
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            alt = "".join(c.content for c in child.children) or str(child.attrs.get("alt", ""))
            parts.append(f"[{alt}]" if alt else "")
        elif kind == "link":
            words = _inline(child, urls)
            href = str(child.attrs.get("href", ""))
            shown = href[7:] if href[:7].lower() == "mailto:" else href
            parts.append(words if not urls or words.strip() in (href, shown) else f"{words} ({shown})")
        else:                                   # strong, em, s: keep the words
            parts.append(_inline(child, urls))
    return "".join(parts)


def _wrap(text: str, width: int) -> list[str]:
    """Return text wrapped at width (hard breaks kept), never breaking words or URLs.

    A per-subscriber token counts as TOKEN_WIDTH characters (a name, not its 40-odd-character
    placeholder), so lines come out near the width once it is filled in.
    """
    tokens = ANY_TOKEN.findall(text)
    if tokens:
        # One private-use character per token, repeated: no space inside, restored after wrapping.
        text = ANY_TOKEN.sub(lambda m: chr(_PRIVATE + tokens.index(m.group(0))) * TOKEN_WIDTH, text)
    lines: list[str] = []
    for line in text.split("\n"):
        lines += textwrap.wrap(line, max(width, 20), break_long_words=False, break_on_hyphens=False) or [""]
    while lines and not lines[-1]:
        lines.pop()
    if tokens:
        lines = [_STAND_IN.sub(lambda m: tokens[ord(m.group(0)[0]) - _PRIVATE], line) for line in lines]
    return lines
