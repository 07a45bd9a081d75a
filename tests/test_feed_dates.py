"""Feed dates as real tools write them (other languages, "2026/11/28 15:07") are read, so --since
keeps what is recent; an entry without a usable date counts as new once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from compose_support import article_page, rss_item
from newsletter.articles.feeddates import DateReader
from newsletter.articles.feeds import read_feed_window
from newsletter.config import FetchSection

DE_DAYS = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"]
DE_MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
             "Oktober", "November", "Dezember"]
FR_DAYS = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."]
FR_MONTHS = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."]


def german(when: datetime) -> str:
    return f"{DE_DAYS[when.weekday()]}, {when.day}. {DE_MONTHS[when.month - 1]} {when:%Y %H:%M}"


def french(when: datetime) -> str:
    return f"{FR_DAYS[when.weekday()]} {when.day} {FR_MONTHS[when.month - 1]} {when:%Y %H:%M:%S} +0000"


def slashed(when: datetime) -> str:
    return f"{when:%Y/%m/%d %H:%M}"


def test_dates_feedparser_misreads_are_read_right():
    reader = DateReader("de-DE")
    assert reader.read("2026/11/28 15:07") == datetime(2026, 11, 28, 15, 7, tzinfo=timezone.utc)
    assert reader.read("Samstag, 28. November 2026 15:07") == datetime(2026, 11, 28, 15, 7, tzinfo=timezone.utc)
    assert DateReader().read("28 ноября 2026 г.") == datetime(2026, 11, 28, tzinfo=timezone.utc)
    assert reader.read("Sat, 28 Nov 2026 15:07:00 +0100") == datetime(2026, 11, 28, 14, 7, tzinfo=timezone.utc)
    assert reader.read("2026-11-28T15:07:00Z") == datetime(2026, 11, 28, 15, 7, tzinfo=timezone.utc)


def test_a_date_nobody_can_read_is_none_and_the_feed_stops_detecting():
    reader = DateReader()
    assert reader.read("sometime soon") is None and reader.detecting      # no digit: not even tried
    assert reader.read("issue 12 of the zine") is None and reader.read("12 zz") is None
    assert not reader.detecting          # language detection takes seconds: not again for this feed
    assert reader.read("2026/11/28 15:07") == datetime(2026, 11, 28, 15, 7, tzinfo=timezone.utc)


def test_add_since_keeps_recent_entries_whatever_their_date_looks_like(project, web_site):
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    page = lambda i: web_site.page(f"/p{i}.html", article_page(f"Story {i}", f"Event {i} took place."))  # noqa: E731
    feed = web_site.feed("/feed.xml", [
        rss_item(page(1), "German date", german(now - timedelta(days=1))),
        rss_item(page(2), "French date", french(now - timedelta(days=2))),
        rss_item(page(3), "Slashed date", slashed(now - timedelta(days=3))),
        rss_item(page(4), "Old", format_datetime(now - timedelta(days=30))),
        rss_item(page(5), "No date", None, guid="urn:story:5"),
        rss_item(page(6), "Unreadable date", "bientôt", guid="urn:story:6"),
    ], language="de")
    project.run("issue", "new", "w1")
    first = project.run("add", "--feed", feed, "--since", "7d", "--issue", "w1")
    assert "5 added to w1, 0 skipped, 0 failed, 1 older than --since" in first.stdout
    # Newest first, undated ones after them.
    assert [line[len("added: "):] for line in first.stdout.splitlines() if line.startswith("added: ")] == \
        ["Story 1", "Story 2", "Story 3", "Story 5", "Story 6"]

    # The undated entries were new once: another issue reading the same feed leaves them out.
    project.run("issue", "new", "w2")
    second = project.run("add", "--feed", feed, "--since", "7d", "--issue", "w2")
    assert "3 added to w2" in second.stdout and "2 undated and seen before" in second.stdout


def test_the_window_counts_what_it_left_out(web_site):
    now = datetime.now(timezone.utc)
    feed = web_site.feed("/f.xml", [rss_item(f"{web_site.base}/p{i}", f"S{i}", format_datetime(now - timedelta(days=i)))
                                    for i in range(1, 6)] + [rss_item(f"{web_site.base}/u", "U", None)])
    window = read_feed_window(feed, FetchSection(), since=timedelta(days=3, hours=12), limit=2,
                              is_new=lambda guid: True)
    assert [e.title for e in window.entries] == ["S1", "S2"]
    assert (window.older, window.beyond_limit, window.undated_new) == (2, 2, 1)
    assert window.entries[0].guid == f"{web_site.base}/p1"
