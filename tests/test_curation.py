"""Curation sticks: one story is one item whatever address it comes under (canonical link, tracking
parameters), a saved page finds its own link, and an item the editor deleted never comes back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import tomlkit

from compose_support import article_page, rss_item
from newsletter import issues
from newsletter.articles.duplicates import url_key, without_tracking
from newsletter.articles.links import page_links
from newsletter.config import load_config

CANONICAL = "https://news.example/2026/11/council-trees"


def _items(project, issue_id: str = "w1") -> list[dict]:
    return json.loads(project.run("issue", "show", issue_id, "--json").stdout)["items"]


def _delete_item(path, url: str) -> None:
    """Delete the [[items]] block whose url is url, as an editor does in the file."""
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    kept = [t for t in doc["items"] if t["url"] != url]
    assert len(kept) == len(doc["items"]) - 1
    aot = tomlkit.aot()
    for table in kept:
        aot.append(table)
    doc["items"] = aot
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def test_url_identity_ignores_tracking_parameters_fragments_slashes_and_scheme():
    same = ["https://News.Example/a/b?utm_source=twitter&utm_medium=social", "http://news.example/a/b/",
            "https://news.example/a/b#comments", "https://news.example:443/a/b?fbclid=xyz&gclid=1&mc_cid=2"]
    assert {url_key(u) for u in same} == {"https://news.example/a/b"}
    assert url_key("https://news.example/a/b?v=2") != url_key("https://news.example/a/b")   # not a tracker
    assert url_key("https://news.example/a?id=3&utm_source=x") == url_key("https://news.example/a?id=3")
    assert without_tracking("https://news.example/a?id=3&utm_source=x&b=") == "https://news.example/a?id=3&b="
    assert without_tracking("https://news.example/a?b=1&a=2") == "https://news.example/a?b=1&a=2"


def test_a_page_and_its_variants_declaring_a_canonical_link_are_one_item(project, web_site):
    html = article_page("Council plants trees", "The council approved street trees.",
                        head=f'<link rel="canonical" href="{CANONICAL}">')
    page = web_site.page("/story.html", html)
    project.run("issue", "new", "w1")
    first = project.run("add", f"{page}?utm_source=twitter", "--issue", "w1")
    assert "1 added" in first.stdout
    # Known before fetching (tracking parameters), and after fetching (its canonical link).
    again = project.run("add", page, f"{page}?v=2", f"{page}?utm_campaign=x#top", "--issue", "w1")
    assert "0 added to w1, 3 skipped" in again.stdout and again.stderr.count("already in this issue") == 3
    assert [i["url"] for i in _items(project)] == [CANONICAL]
    assert web_site.requests.count("/story.html?v=2") == 1          # the ?v=2 one had to be fetched


def test_saved_pages_take_their_link_from_og_url_or_the_saved_from_note(project, tmp_path):
    saved = tmp_path / "saved.html"
    saved.write_text("<!DOCTYPE html>\n<!-- saved from url=(0041)https://news.example/2026/11/saved-story -->\n"
                     + article_page("A saved story", "Saved from the browser."), encoding="utf-8")
    og = tmp_path / "og.html"
    og.write_text(article_page("An og story", "Shared widely.",
                               head='<meta property="og:url" content="https://news.example/og-story">'),
                  encoding="utf-8")
    bare = tmp_path / "bare.html"
    bare.write_text(article_page("A bare story", "Nothing names its address."), encoding="utf-8")
    project.run("issue", "new", "w1")
    result = project.run("add", str(saved), str(og), str(bare), "--issue", "w1")
    assert [i["url"] for i in _items(project)] == ["https://news.example/2026/11/saved-story",
                                                  "https://news.example/og-story", ""]
    assert f"warning: {bare}: added without a link" in result.stderr and "--url URL" in result.stderr
    assert result.stderr.count("added without a link") == 1
    assert page_links('<html><head><link rel="canonical alternate" href="/x"></head></html>').canonical == "/x"


def test_a_deleted_item_does_not_come_back_from_a_rerun_of_the_feed(project, web_site):
    now = datetime.now(timezone.utc)
    pages = [web_site.page(f"/p{i}.html", article_page(f"Story {i}", f"Story number {i} happened."))
             for i in range(3)]
    feed = web_site.feed("/feed.xml", [rss_item(f"{p}?utm_source=rss", f"Story {i}",
                                                format_datetime(now - timedelta(hours=i + 1)))
                                       for i, p in enumerate(pages)])
    project.run("issue", "new", "w1")
    assert "3 added" in project.run("add", "--feed", feed, "--since", "7d", "--issue", "w1").stdout
    path = project.issue_file("w1")
    _delete_item(path, pages[1])

    rerun = project.run("add", "--feed", feed, "--since", "7d", "--issue", "w1")
    assert f"remembered as removed from w1: {pages[1]}" in rerun.stdout
    assert "0 added to w1, 3 skipped" in rerun.stdout
    assert f"{pages[1]}?utm_source=rss: skipped, removed from this issue by you" in rerun.stderr
    assert issues.load_tombstones(path.parent, "w1") == [pages[1]]
    assert "removed = [" in path.read_text(encoding="utf-8")
    shown = project.run("issue", "show", "w1").stdout
    assert "removed (1;" in shown and pages[1] in shown
    # Known before fetching: the rerun fetched nothing but the feed.
    assert not any(r.startswith("/p") for r in web_site.requests[3 + 1 + 1:])

    # An explicit add of the same story is skipped too; --force brings it back and clears the tombstone.
    assert "removed from this issue by you" in project.run("add", pages[1], "--issue", "w1").stderr
    forced = project.run("add", pages[1], "--issue", "w1", "--force")
    assert "1 added" in forced.stdout and "no longer in `removed`" in forced.stdout
    assert issues.load_tombstones(path.parent, "w1") == []
    assert [i["url"] for i in _items(project)] == [pages[0], pages[2], pages[1]]


def test_the_editor_clears_a_tombstone_by_deleting_its_line(project, web_site):
    page = web_site.page("/p.html", article_page("Story", "A story happened."))
    project.run("issue", "new", "w1")
    project.run("add", page, "--issue", "w1")
    path = project.issue_file("w1")
    _delete_item(path, page)
    assert "removed from this issue by you" in project.run("add", page, "--issue", "w1").stderr
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    del doc["removed"]
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    assert "1 added" in project.run("add", page, "--issue", "w1").stdout


def test_a_new_issue_file_of_the_same_id_starts_with_nothing_remembered(project, web_site):
    page = web_site.page("/p.html", article_page("Story", "A story happened."))
    project.run("issue", "new", "w1")
    project.run("add", page, "--issue", "w1")
    project.issue_file("w1").unlink()
    project.run("issue", "new", "w1")
    assert "1 added" in project.run("add", page, "--issue", "w1").stdout


def test_a_story_in_a_sent_issue_is_skipped_under_another_address(project, web_site):
    html = article_page("Council plants trees", "The council approved street trees.",
                        head=f'<link rel="canonical" href="{CANONICAL}">')
    page = web_site.page("/story.html", html)
    project.run("issue", "new", "w1")
    project.run("add", page, "--issue", "w1")
    project.run("subscribers", "import", str(project.root / "subscribers" / "sample.csv"))
    project.run("send", "w1", "--build")
    project.run("issue", "new", "w2")
    later = project.run("add", f"{page}?v=2&utm_source=newsletter", "--issue", "w2")
    assert "already in an issue that was sent" in later.stderr and "0 added" in later.stdout
    config = load_config(project.config_file)
    assert issues.load_issue(config.paths.issues, "w2").items == ()
