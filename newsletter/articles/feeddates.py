"""Feed entry dates as written by real tools: RFC 822 and RFC 3339 first, then dateparser for the
rest (other languages, "2026/11/28 15:07"); returns UTC datetimes or None."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from ..timeutil import as_utc

log = logging.getLogger(__name__)

# A feed date names a day: without REQUIRE_PARTS dateparser reads "12 zz" as a date in 2012.
_SETTINGS = {"TIMEZONE": "UTC", "TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True,
             "REQUIRE_PARTS": ["day", "month", "year"]}
_MAX_CHARS = 80          # longer "dates" are prose; dateparser would search them for seconds
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}")


class DateReader:
    """Reads the dates of one feed; language is the feed's declared language ("de-DE"), if any.

    feedparser reads RFC 822 and ISO 8601 well but reads other forms wrongly rather than not at
    all ("2026/11/28 15:07" comes back as 1 November), so only the standard forms are trusted to
    the standard library, and every other form goes to dateparser (the feed's language first,
    then English, then detected). When dateparser finds nothing in an entry's date, the rest of
    the feed skips detection (it can take seconds per string) and falls back to feedparser.
    """

    def __init__(self, language: str = ""):
        found = _LANGUAGE.match(language.strip())
        self.language = found.group(0).lower() if found else ""
        self._parsers: list = []
        self.detecting = True       # False once detection found nothing in this feed

    def _dateparsers(self) -> list:
        """Return the dateparser parsers to try: the feed's language, English (numeric forms
        need no language), then detection among all locales (built once, dropped once it fails)."""
        if not self._parsers:
            from dateparser.date import DateDataParser     # 0.2 s to import: only when needed

            for languages in dict.fromkeys([self.language or "en", "en"]):
                try:
                    self._parsers.append(DateDataParser(languages=[languages], settings=_SETTINGS,
                                                        try_previous_locales=True))
                except ValueError:
                    log.debug("dateparser has no locale %r", languages)
            self._parsers.append(DateDataParser(settings=_SETTINGS, try_previous_locales=True))
        return self._parsers if self.detecting else self._parsers[:-1]

    def read(self, raw: str, fallback: time.struct_time | None = None) -> datetime | None:
        """Return the UTC datetime raw names, else feedparser's reading (fallback), else None."""
        text = " ".join((raw or "").split())
        if text:
            standard = _standard(text)
            if standard is not None:
                return standard
            if any(c.isdigit() for c in text) and len(text) <= _MAX_CHARS:
                for parser in self._dateparsers():
                    found = parser.get_date_data(text).date_obj
                    if found is not None:
                        return as_utc(found)
                self.detecting = False
                log.debug("feed date %r: not understood", text)
        if fallback is not None:
            return datetime(*fallback[:6], tzinfo=timezone.utc)
        return None


def _standard(text: str) -> datetime | None:
    """Return text read as RFC 822 (RSS) or RFC 3339/ISO 8601 (Atom), in UTC; None otherwise."""
    try:
        return as_utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        return None
