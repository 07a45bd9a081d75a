"""extract(): HTML pages through trafilatura plus our clean-up, plain text through general rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.errors import SourceError
from newsletter.articles.extract import extract, html_to_text
from newsletter.models import RawDocument

ARTICLES = Path(__file__).parent / "data" / "articles"   # the raw seed sample
SAMPLE_PAGES = Path(__file__).resolve().parent.parent / "articles"   # the project's sample pages


def text_doc(body: str, source: str = "note.txt") -> RawDocument:
    return RawDocument(source=source, body=body, kind="text")


def html_doc(name: str, url: str | None = None) -> RawDocument:
    return RawDocument(source=name, body=(SAMPLE_PAGES / name).read_text(encoding="utf-8"), kind="html",
                       url=url)


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


# ---------------------------------------------------------------- the seed sample (plain text)

@pytest.fixture(scope="module")
def seed():
    return extract(text_doc((ARTICLES / "space-diplomacy.txt").read_text(encoding="utf-8"),
                            "space-diplomacy.txt"))


def test_seed_title_is_the_headline(seed):
    assert seed.title == "Space Diplomacy: Roscosmos, NASA, and the Evolving Cosmos of Cooperation"
    assert "Evolving Cosmos of Cooperation" not in seed.text


def test_seed_text_starts_with_the_first_real_paragraph(seed):
    assert seed.text.startswith("Upon his return from the United States, Dmitry Bakanov")


@pytest.mark.parametrize("unwanted", ["Medical news", "Brevard County, Florida & Moscow",
                                      "Nathan Thorne", "Bristol Royal Infirmary",
                                      "Latest medical news", "`"])
def test_seed_boilerplate_is_gone(seed, unwanted):
    assert unwanted not in seed.text


def test_seed_ends_with_the_story(seed):
    assert seed.text.endswith("provided they agree on the parking spots.")


def test_seed_metadata_from_the_removed_lines(seed):
    assert seed.author == "Nathan Thorne"
    assert seed.date == "2025-07-31"


def test_seed_grave_accent_becomes_an_apostrophe(seed):
    assert "the station’s controlled deorbiting" in seed.text
    assert "It’s a testament" in seed.text


def test_seed_bullets_and_headings_stay_recognisable(seed):
    paras = paragraphs(seed.text)
    bullets = [p for p in paras if p.startswith("• ")]
    assert len(bullets) == 4 and bullets[0].startswith("• Orbital Debris Mitigation:")
    for heading in ("The Gravitational Pull of Shared Challenges", "The Path Forward",
                    "Beyond Low-Earth Orbit: Lunar Horizons"):
        assert heading in paras
    assert all(p == p.strip() and p for p in paras)


# ---------------------------------------------------------------- general plain-text rules

def test_labels_byline_and_stamps_before_the_story_are_dropped():
    article = extract(text_doc(
        "Robots Learn to Fold Laundry\n\nTechnology\n\nBy Jane Doe\n\n"
        "Published 3 March 2024\n\n"
        "A team of engineers has taught a pair of robot arms to fold towels, shirts and trousers "
        "in under a minute, a task that has long defeated machines.\n\n"
        "The system watched people fold clothes for weeks before trying it itself."))
    assert article.title == "Robots Learn to Fold Laundry"
    assert article.author == "Jane Doe" and article.date == "2024-03-03"
    assert article.text.startswith("A team of engineers")
    assert "Technology" not in article.text and "Published" not in article.text


def test_a_section_label_above_the_headline_is_not_the_title():
    article = extract(text_doc(
        "Science\n\nHow Octopuses Taste With Their Arms\n\nLisbon, 4 May 2024\n\n"
        "Octopuses can taste what they touch, thanks to receptors spread along the suckers of "
        "their eight arms, a new study of their nervous system has found."))
    assert article.title == "How Octopuses Taste With Their Arms"
    assert article.date == "2024-05-04"
    assert article.text.startswith("Octopuses can taste")


def test_sentences_that_look_like_labels_are_kept():
    story = [
        "Scientists in the Arctic found that the ice melted faster than any model had predicted.",
        "Published in Nature in 2024, the study drew on twenty years of satellite records.",
        "Related research has shown that warmer winters weaken the ice from below.",
        "Latest figures show that news of the thaw reached shipping firms within days.",
        "On the page",
        "Engineers say the route could open to cargo ships for months every summer.",
    ]
    assert paragraphs(extract(text_doc("\n\n".join(story))).text) == story


def test_credits_share_lines_stamps_promos_and_repeats_are_dropped():
    story = ("The council approved the new cycle lanes on Tuesday after a long debate about "
             "parking, deliveries and the safety of children walking to school.")
    more = "Work will begin in the spring and should take about eight months to complete."
    promo = "Sign up for our morning newsletter and get the day's news in your inbox."
    article = extract(text_doc("\n\n".join([
        "Cycle lanes approved", story, "Photo: John Smith", promo,
        "A cyclist on Mill Road during the morning rush. (Getty Images)",
        "Share this article Facebook Twitter Email",
        more, "Updated at 10:42 on 5 June 2024", promo, more, "Read more", "Subscribe"])))
    assert paragraphs(article.text) == [story, more]


def test_markdown_and_hard_wrapped_text():
    article = extract(text_doc(
        "# Tidal power gets a second look\n\n"
        "Engineers in the north say a new generation of turbines could make tidal power\n"
        "cheaper than offshore wind within a decade, if the [pilot project](https://x.example/p)\n"
        "now under way proves as reliable as its designers hope.\n\n"
        "## What changed\n\n"
        "- Turbines that sit on the seabed without a piling\n"
        "- Blades made of a composite that resists fouling\n", "tidal.md"))
    assert article.title == "Tidal power gets a second look"
    assert paragraphs(article.text) == [
        "Engineers in the north say a new generation of turbines could make tidal power cheaper "
        "than offshore wind within a decade, if the pilot project now under way proves as reliable "
        "as its designers hope.",
        "What changed",
        "- Turbines that sit on the seabed without a piling",
        "- Blades made of a composite that resists fouling",
    ]


def test_short_quote_at_the_end_is_kept():
    story = ("The museum will reopen its dinosaur hall next month after a two-year renovation "
             "that added new skeletons and a room for school visits.")
    article = extract(text_doc(f"{story}\n\n“It was worth the wait,” she said.\n\nTags: museums"))
    assert paragraphs(article.text) == [story, "“It was worth the wait,” she said."]


def test_text_without_a_title_keeps_its_first_paragraph():
    body = "Just one paragraph of plain prose that ends properly, with no headline above it."
    article = extract(text_doc(body))
    assert article.title == "" and article.text == body


@pytest.mark.parametrize("body", ["", "   \n\n  ", "Share\n\nSubscribe"])
def test_empty_text_is_an_error_naming_the_source(body):
    with pytest.raises(SourceError, match=r"^no article text found in empty.txt$"):
        extract(text_doc(body, "empty.txt"))


# ---------------------------------------------------------------- HTML pages

PAGES = {
    "cubesat-aurora.html": dict(
        title="A shoebox-sized satellite is watching the northern lights from the side",
        author="Priya Raman", date="2025-09-16", site_name="Orbital Notes",
        image="https://picsum.photos/seed/arclight-aurora/1200/630",
        first="For decades, most pictures of the aurora",
        last="Every night it works is a night of data nobody else has.”",
        absent=["Photo: ArcLight", "An early ArcLight frame", "Sign up for the Orbital Notes",
                "Never miss a launch", "Solar maximum: what to expect", "Related stories",
                "skywatcher_58", "Brilliant work by the students", "Facebook", "All rights reserved",
                "Updated at", "covers space science"]),
    "library-passkeys.html": dict(
        title="A regional library network dropped passwords for passkeys. Lockouts fell by two thirds",
        author="Marta Lindqvist", date="2025-09-15", site_name="The Circuit Review",
        image="https://picsum.photos/seed/library-passkeys/1200/630",
        first="Eighteen months after offering passkeys",
        last="without visiting a branch.",
        absent=["Illustration: The Circuit Review", "A borrower signs in to the consortium",
                "Security Brief", "Subscribe for free", "Advertisement", "More from Security",
                "Backups, paper forms", "SIM-swap", "kernelpanic", "Copy link", "Live event"]),
    "street-trees-heat.html": dict(
        title="Volunteers measured 40,000 street trees. Their data is redrawing a city's heat map",
        author="Tomás Herrera", date="2025-09-17", site_name="Field & Lab",
        image="https://picsum.photos/seed/street-trees/1200/630",
        first="On hot afternoons over the past two summers",
        last="repeat the survey every five years.",
        absent=["Getty Images", "Mature plane trees shade", "Volunteers measure the trunk",
                "Photo: Ana Kovač", "free weekly newsletter", "Updated at 11:20", "Share:",
                "Published 17 September", "greenfingers", "Related stories", "Most popular",
                "By Tomás Herrera"]),
    "walk-after-dinner.html": dict(
        title="A ten-minute walk after dinner blunts blood sugar spikes, small trial finds",
        author="Daniel Okafor", date="2025-09-18", site_name="Healthwise Daily",
        image="https://picsum.photos/seed/evening-walk/1200/675",
        first="Volunteers who strolled shortly after eating",
        last="not a substitute for advice from your doctor.",
        absent=["Marco Bellini", "Participants walked at a comfortable pace for ten", "Sign up",
                "Healthwise Weekly", "Share on Facebook", "WhatsApp", "Tags:", "You may also like",
                "Gwen", "Forty-eight people for three weeks", "Leave a Reply", "Most read",
                "Previous: Strength training", "4 min read", "Registered in England"]),
}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_html_article_metadata(name):
    want = PAGES[name]
    article = extract(html_doc(name))
    for key in ("title", "author", "date", "site_name", "image"):
        assert getattr(article, key) == want[key], key
    assert article.url and article.url.startswith("https://")     # the canonical link
    assert article.description


@pytest.mark.parametrize("name", sorted(PAGES))
def test_html_article_text_is_the_story_only(name):
    want = PAGES[name]
    text = extract(html_doc(name)).text
    assert text.startswith(want["first"])
    assert text.endswith(want["last"])
    for unwanted in want["absent"]:
        assert unwanted not in text, unwanted
    paras = paragraphs(text)
    assert len(paras) >= 12 and all(p and "\n" not in p for p in paras)


def test_html_grave_accent_and_headline_not_repeated():
    article = extract(html_doc("street-trees-heat.html"))
    assert "the city’s environment office" in article.text
    assert article.title not in article.text


def test_relative_lead_image_is_made_absolute():
    page = ("<html><head><title>Bees</title><meta property='og:image' content='/img/bees.jpg'></head>"
            "<body><article><h1>Bees</h1>" + "<p>Bees are busy pollinating the orchards this "
            "spring, and the growers are relieved to see them back in numbers.</p>" * 4 +
            "</article></body></html>")
    article = extract(RawDocument(source="u", body=page, kind="html",
                                  url="https://news.example/2025/bees.html"))
    assert article.image == "https://news.example/img/bees.jpg"
    assert article.url == "https://news.example/2025/bees.html"


def test_html_fragment_is_accepted():
    fragment = "<p>" + "A fragment pasted on stdin is still an article worth reading. " * 3 + "</p>"
    assert html_to_text(fragment).startswith("A fragment pasted on stdin")


def test_html_without_an_article():
    page = "<html><body><nav><a href='/'>Home</a></nav><footer>© 2025</footer></body></html>"
    assert html_to_text(page) == ""
    with pytest.raises(SourceError, match=r"^no article text found in https://x.example/a$"):
        extract(RawDocument(source="https://x.example/a", body=page, kind="html"))


# ---------------------------------------------------------------- robustness

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_any_text_gives_an_article_or_a_source_error(body):
    try:
        article = extract(text_doc(body))
    except SourceError as err:
        assert str(err) == "no article text found in note.txt"
    else:
        assert article.text.strip()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["<p>", "</p>", "<div>", "<article>", "<html>", "<", ">", "&amp;",
                                 "words here.", "<script>", "\x00", "<!--", "é", "\n"]),
                max_size=40).map("".join))
def test_any_markup_gives_an_article_or_a_source_error(body):
    try:
        extract(RawDocument(source="page.html", body=body, kind="html"))
    except SourceError as err:
        assert re.match(r"^(no article text found in page.html|page.html: cannot parse)", str(err))
