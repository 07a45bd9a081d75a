"""Which links an issue may not take again: those already in it and those in issues already sent."""

from __future__ import annotations

from .. import issues
from ..config import Config
from ..db import get_engine
from ..errors import IssueError
from ..ledger import Ledger


def normalise_url(url: str) -> str:
    """Return url without fragment and trailing slash, for duplicate detection."""
    url = url.split("#", 1)[0].strip()
    return url[:-1] if url.endswith("/") else url


def sent_urls(config: Config, exclude: str) -> set[str]:
    """Return the normalised URLs of every item in issues that were already sent (besides exclude)."""
    urls: set[str] = set()
    for issue_id, _when in Ledger(get_engine(config)).sent_issues():
        if issue_id == exclude:
            continue
        try:
            sent = issues.load_issue(config.paths.issues, issue_id)
        except IssueError:
            continue        # a sent issue whose file was removed blocks nothing
        urls.update(normalise_url(i.url) for i in sent.items if i.url)
    return urls


class DuplicateGuard:
    """Knows the URLs already in this issue and in sent issues; says why a URL must be skipped."""

    def __init__(self, config: Config, issue_id: str, force: bool):
        current = issues.load_issue(config.paths.issues, issue_id)
        self.in_issue = {normalise_url(i.url) for i in current.items if i.url}
        self.in_sent = set() if force else sent_urls(config, issue_id)
        self.force = force

    def reason(self, url: str) -> str | None:
        """Return why url is a duplicate, or None; remembers nothing."""
        if self.force or not url:
            return None
        key = normalise_url(url)
        if key in self.in_issue:
            return "already in this issue"
        if key in self.in_sent:
            return "already in an issue that was sent"
        return None

    def remember(self, url: str) -> None:
        """Count url as part of the issue from now on."""
        if url:
            self.in_issue.add(normalise_url(url))
