"""Front matter in saved text/Markdown articles gives the item its link, title and byline."""

from newsletter.articles.extract import extract
from newsletter.articles.frontmatter import split_front_matter
from newsletter.models import RawDocument

BODY = ("A long enough first paragraph of the article body, so the extractor keeps it as text.\n\n"
        "And a second paragraph that carries on with the story for a few more words.\n")


def test_front_matter_fields_win_and_unknown_keys_are_ignored():
    raw = ('---\ntitle: "Saved story"\nurl: https://example.org/saved\nauthor: Ada Lovelace\n'
           "layout: post\ntags: [a, b]\n---\n" + BODY)
    article = extract(RawDocument(source="saved.md", body=raw, kind="text"))
    assert (article.title, article.url, article.author) == ("Saved story", "https://example.org/saved",
                                                            "Ada Lovelace")
    assert "layout" not in article.text and article.text.startswith("A long enough")


def test_text_without_front_matter_is_unchanged():
    assert split_front_matter(BODY) == ({}, BODY)
    rule_later = "Intro line\n---\nurl: x\n---\n"
    assert split_front_matter(rule_later) == ({}, rule_later)
