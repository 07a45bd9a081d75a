"""Issue → Rendered: Jinja2 → MJML (mjml-python) → premailer; raises RenderError or ConfigError."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import string
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ..config import Config
from ..errors import ConfigError, RenderError
from ..models import Issue, Rendered
from .html import compile_mjml, inline_css, iri_to_uri
from .markdown import is_web_url
from .merge import MergeFields
from .merge_extension import MERGE_CALL, MergeFieldExtension
from .placeholders import TokenProxy, new_nonce
from .texts import TEXTS_VAR, IssueTexts, markdown_filter, markdown_text_filter

# A symlink to the project's templates/ folder, so the package and the repository share one copy.
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent / "default_templates"
HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
PREHEADER_CHARS = 140

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}\Z")
_NONCE = re.compile(r"[0-9a-f]{16}\Z")          # what tokens.new_nonce() returns


def render_issue(issue: Issue, config: Config, nonce: str | None = None) -> Rendered:
    """Return the issue rendered once (HTML inlined, text part) with tokens of nonce in both bodies.

    The editor's intro, outro and item notes are Markdown; merge fields on `subscriber` in them,
    in the templates and in the subject become snippets evaluated per subscriber
    (Rendered.merge_fields). Links and images that are not http(s) (links: or mailto) are
    dropped: those of the Markdown are listed in Rendered.warnings, an item's own link or image
    is named by check_rendered. Raises RenderError for a template that fails at run time, MJML
    that cannot compile or premailer failing; ConfigError for a missing or malformed template,
    merge field or subject/colour setting.
    """
    nonce = nonce or new_nonce()
    if not _NONCE.match(nonce):
        raise RenderError(f"issue {issue.id!r}: nonce {nonce!r} is not 16 lowercase hex digits")
    # Both parts show the same ASCII URLs (lxml would percent-encode an IRI in the HTML only);
    # a link or image that is not http(s) is dropped here (the checks report it per item).
    issue = dataclasses.replace(issue, items=tuple(
        dataclasses.replace(item, url=_web(item.url), image=_web(item.image)) for item in issue.items))
    env = environment(str(Path(config.paths.templates).resolve()))
    merge = MergeFields(nonce)
    texts = IssueTexts(merge)
    texts.prepare(issue)
    accent = _accent(config)
    date = format_date(issue.date, config.newsletter.language)
    preheader = derive_preheader(issue)
    context = {
        "issue": issue,
        "sections": issue.sections(),
        "newsletter": config.newsletter,
        "subscriber": TokenProxy(nonce),
        "date": date,
        "preheader": preheader,
        "accent": accent,
        "accent_text": _text_on(accent),
        MERGE_CALL: merge.add,
        TEXTS_VAR: texts,
    }
    mjml_source = _render(env, HTML_TEMPLATE, context)
    html = inline_css(compile_mjml(mjml_source, _display(env, HTML_TEMPLATE)))
    text = _tidy_text(_render(env, TEXT_TEMPLATE, context))
    subject = _subject(issue, config, date, merge)
    return Rendered(issue_id=issue.id, subject=subject, preheader=preheader, html=html, text=text,
                    nonce=nonce, merge_fields=tuple(merge.snippets),
                    warnings=tuple(texts.warnings + merge.warnings))


def _web(url: str) -> str:
    """Return url in ASCII when it is an absolute http(s) URL, else "" (never javascript: or data:)."""
    return iri_to_uri(url) if url and is_web_url(url) else ""


@lru_cache(maxsize=16)
def environment(templates_dir: str) -> jinja2.Environment:
    """Return the (cached) Jinja environment: templates_dir first, then the built-in templates."""
    search = [templates_dir]
    if Path(templates_dir).resolve() != DEFAULT_TEMPLATES.resolve():
        search.append(str(DEFAULT_TEMPLATES))
    env = jinja2.Environment(
        loader=_Loader(search),
        # HTML-ish templates escape every value; the plain-text part must not.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml.j2", "mjml", "html.j2", "html", "htm"),
            default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        auto_reload=True,  # an edited template is picked up by a long-running scheduler
        extensions=[MergeFieldExtension],   # per-subscriber expressions become merge fields
    )
    env.filters["paragraphs"] = paragraphs
    env.filters["lines"] = lines
    env.filters["markdown"] = markdown_filter
    env.filters["markdown_text"] = markdown_text_filter
    return env


class _Loader(jinja2.BaseLoader):
    """Loads a template from the first folder that has it; a fallback copy goes stale once an
    earlier folder gains that file, so a running scheduler picks up a newly added override."""

    def __init__(self, searchpath: list[str]):
        self.searchpath = searchpath
        self._loaders = [jinja2.FileSystemLoader(path) for path in searchpath]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        """Return (source, filename, uptodate); raises TemplateNotFound when no folder has it."""
        for index, loader in enumerate(self._loaders):
            try:
                source, filename, uptodate = loader.get_source(environment, template)
            except jinja2.TemplateNotFound:
                continue
            earlier = [os.path.join(path, template) for path in self.searchpath[:index]]
            return source, filename, lambda: uptodate() and not any(map(os.path.exists, earlier))
        raise jinja2.TemplateNotFound(template)


def paragraphs(text: str) -> list[str]:
    """Return the paragraphs of text (split at blank lines), each with its whitespace collapsed."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text or "") if p.strip()]


def lines(text: str) -> list[str]:
    """Return the non-empty lines of text, stripped (a postal address written over several lines)."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def format_date(iso: str, language: str) -> str:
    """Return the issue date for display: "3 March 2025" in English, ISO elsewhere, as written if odd."""
    if not iso:
        return ""
    try:
        day = datetime.date.fromisoformat(iso[:10])
    except ValueError:
        return iso
    if language.lower().startswith("en"):
        return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    # Without a locale library there is no correct month name for other languages: ISO is unambiguous.
    return day.isoformat()


def derive_preheader(issue: Issue) -> str:
    """Return the inbox preview line: the issue's own, else the opening of the intro (as plain
    text, merge fields at their fallbacks) or of the first summary."""
    if issue.preheader.strip():
        return " ".join(issue.preheader.split())
    if issue.intro.strip():
        text = IssueTexts(MergeFields("0" * 16)).plain(issue.intro)
    else:
        text = " ".join(next((item.summary for item in issue.items if item.summary), "").split())
    if len(text) <= PREHEADER_CHARS:
        return text
    cut = text[:PREHEADER_CHARS - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(",;:") + "…"


def _render(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """Return template name rendered with context; ConfigError if missing/malformed, else RenderError."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as err:  # in the template or in a partial it includes
        where = _relative(err.filename) if err.filename else _display(env, err.name or name)
        raise ConfigError(f"{where}:{err.lineno}: {err.message}") from err
    except jinja2.TemplateNotFound as err:
        if err.name == name:
            folders = " or ".join(env.loader.searchpath)
            raise ConfigError(f"{name}: template not found in {folders}") from err
        raise ConfigError(f"{_template_line(env, err, name)}: included template {err.name!r} not found"
                          ) from err
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError,
            IndexError, ArithmeticError) as err:
        raise RenderError(f"{_template_line(env, err, name)}: {err}") from err


def _template_line(env: jinja2.Environment, err: BaseException, name: str) -> str:
    """Return "file:line" of the innermost template frame in err's traceback (Jinja rewrites them)."""
    roots = tuple(os.path.join(p, "") for p in env.loader.searchpath)
    found = _display(env, name)
    tb = err.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(roots):
            found = f"{_relative(filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _display(env: jinja2.Environment, name: str) -> str:
    """Return the readable path of the file that template name is loaded from."""
    for root in env.loader.searchpath:
        candidate = os.path.join(root, name)
        if os.path.exists(candidate):
            return _relative(candidate)
    return name


def _relative(path: str) -> str:
    """Return path relative to the working folder when it lies under it, else unchanged."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _tidy_text(text: str) -> str:
    """Return the text part without trailing spaces and with at most one blank line in a row."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


_SUBJECT_NAMES = frozenset({"name", "title", "date"})


def _subject(issue: Issue, config: Config, date: str, merge: MergeFields) -> str:
    """Return the subject from newsletter.subject, its merge fields as tokens; raises ConfigError
    for an unknown {placeholder}."""
    fmt = config.newsletter.subject
    try:
        merged = merge.text(fmt, "newsletter.subject")
        for _text, field_name, spec, conversion in string.Formatter().parse(merged):
            # Only the three names themselves: no {title.__class__}, {title[0]} or {title:>99999999}.
            if field_name is not None and (field_name not in _SUBJECT_NAMES or spec or conversion):
                raise ValueError(f"{{{field_name}{'!' + conversion if conversion else ''}"
                                 f"{':' + spec if spec else ''}}}")
        subject = merged.format(name=config.newsletter.name, title=issue.title, date=date)
    except (KeyError, IndexError, ValueError, AttributeError) as err:
        raise ConfigError(f"{config.path or 'config'}: newsletter.subject {fmt!r}: bad placeholder "
                          f"({err}); use {{name}}, {{title}}, {{date}} and merge fields such as "
                          "{{ subscriber.name or 'friend' }}") from err
    # One line: a newline in a title must never reach the Subject header.
    return " ".join(subject.split())


def _accent(config: Config) -> str:
    """Return newsletter.accent_color; raises ConfigError unless it is a #rgb or #rrggbb colour."""
    colour = config.newsletter.accent_color.strip()
    if not _HEX_COLOUR.match(colour):
        raise ConfigError(f"{config.path or 'config'}: newsletter.accent_color must be a colour like "
                          f"#1a56db, got {colour!r}")
    return colour


def _text_on(colour: str) -> str:
    """Return white or near-black, whichever contrasts more with the background colour (WCAG)."""
    digits = colour[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white is 1.05/(L+0.05); with #111111 (L≈0.0056) it is (L+0.05)/0.0556.
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.0556 else "#111111"
