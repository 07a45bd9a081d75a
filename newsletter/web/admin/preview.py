"""The preview beside the editor: the issue built as `newsletter build` does, then read back.

The frames show the sample message build_issue saves (preview.eml: personalised for a sample
reader), so what the editor sees is what `send` would send.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field

from ...config import Config
from ...errors import NewsletterError
from ...issues import issue_path
from ...render import saved


@dataclass
class Preview:
    """The built preview of an issue: HTML and text parts, check warnings, or why there is none."""

    html: str = ""
    text: str = ""
    subject: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    frozen: bool = False


def is_stale(config: Config, issue_id: str) -> bool:
    """Return True when the issue file changed after its last build (or it was never built)."""
    meta = saved.render_dir(config.paths.state, issue_id) / saved.PREVIEW_FILE
    source = issue_path(config.paths.issues, issue_id)
    if not meta.exists():
        return True
    try:
        return source.stat().st_mtime_ns > meta.stat().st_mtime_ns
    except OSError:
        return True


def rebuild(config: Config, issue_id: str) -> Preview:
    """Build the issue (pipeline.build_issue) and return its Preview; errors land in .error."""
    from ...pipeline import build_issue, is_frozen

    if is_frozen(config, issue_id):
        preview = read(config, issue_id)
        preview.frozen = True
        return preview
    try:
        report = build_issue(config, issue_id)
    except NewsletterError as err:
        return Preview(error=str(err))
    preview = read(config, issue_id)
    preview.warnings = list(report.warnings)
    return preview


def current(config: Config, issue_id: str) -> Preview:
    """Return the Preview, building first when the file changed since the last build."""
    from ...issues import load_issue
    from ...render.checks import check_rendered

    if is_stale(config, issue_id):
        return rebuild(config, issue_id)
    preview = read(config, issue_id)
    if not preview.error:
        try:
            rendered = saved.load_rendered(config.paths.state, issue_id)
            preview.warnings = check_rendered(rendered, load_issue(config.paths.issues, issue_id))
        except NewsletterError as err:
            preview.error = str(err)
    return preview


def read(config: Config, issue_id: str) -> Preview:
    """Return the HTML and text parts of the saved sample message (error set when there is none)."""
    path = saved.render_dir(config.paths.state, issue_id) / saved.PREVIEW_FILE
    try:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    except OSError:
        return Preview(error=f"issue {issue_id!r} has no preview yet: save it to build one")
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return Preview(html=html.get_content() if html else "", text=text.get_content() if text else "",
                   subject=str(message.get("Subject", "")))
