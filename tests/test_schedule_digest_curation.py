"""The automatic digest knows a story by its canonical link and an undated feed entry as new once:
a `?v=2` variant of a sent article and an entry without a date never go out twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

from compose_support import article_page, rss_item
from newsletter import issues
from newsletter.config import load_config
from newsletter.schedule import jobs

WEEKLY = "0 7 * * mon"
MONDAY = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)


def _configure(project, feed: str) -> None:
    config = project.config_file
    text = config.read_text(encoding="utf-8")
    text = text.replace('cron = ""', f'cron = "{WEEKLY}"').replace(
        "feeds = []\n", f'feeds = [{{ url = "{feed}", section = "News" }}]\n', 1)
    config.write_text(text, encoding="utf-8")
    project.run("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))


def test_variants_of_sent_stories_and_undated_entries_go_out_once(project, web_site):
    story = web_site.page("/story.html", article_page("Council plants trees", "The council approved trees.",
                                                      head='<link rel="canonical" href="https://news.example/trees">'))
    undated = web_site.page("/undated.html", article_page("A timeless piece", "Some things never age."))
    web_site.feed("/feed.xml", [rss_item(f"{story}?utm_source=rss", "Trees", format_datetime(MONDAY - timedelta(days=2))),
                                rss_item(undated, "Timeless", None, guid="urn:timeless")])
    _configure(project, web_site.base + "/feed.xml")
    config = load_config(project.config_file)

    first = jobs.run_firing(config, MONDAY, WEEKLY, "UTC")
    assert (first.state, first.items) == ("sent", 2)
    assert {i.url for i in issues.load_issue(config.paths.issues, first.issue_id).items} == \
        {"https://news.example/trees", undated}

    fresh = web_site.page("/fresh.html", article_page("Fresh news", "Something new happened."))
    web_site.feed("/feed.xml", [rss_item(f"{story}?v=2", "Trees (updated)", format_datetime(MONDAY + timedelta(days=6))),
                                rss_item(fresh, "Fresh", format_datetime(MONDAY + timedelta(days=5))),
                                rss_item(undated, "Timeless", None, guid="urn:timeless")])
    before = len(web_site.requests)
    second = jobs.run_firing(config, MONDAY + timedelta(days=7), WEEKLY, "UTC")
    assert (second.state, second.items) == ("sent", 1)
    assert [i.url for i in issues.load_issue(config.paths.issues, second.issue_id).items] == [fresh]
    assert "/undated.html" not in web_site.requests[before:]          # seen once: not even fetched
