"""The offline summarisers: sentence offsets, filters, the default ranker, lead, plugin loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.summarize import sentences
from newsletter.config import SummarizeSection
from newsletter.errors import ConfigError, SourceError
from newsletter.articles.extract import extract
from newsletter.models import Article, RawDocument
from newsletter.summarize import LeadSummarizer, Summarizer, make_summarizer
from newsletter.summarize.base import candidates
from newsletter.summarize.llm import LLMSummarizer
from newsletter.summarize.rank import RankSummarizer

SEED = Path(__file__).parent / "data" / "articles" / "space-diplomacy.txt"
SEED_FORBIDDEN = [
    "Medical news", "Nathan Thorne", "Bristol Royal Infirmary", "Latest medical news", "•",
    "Evolving Cosmos of Cooperation", "Brevard County, Florida & Moscow",
    "The convergence point for such discussions typically revolves around:",
]
SEED_TOPIC = ["Roscosmos", "NASA", "Bakanov", "space", "ISS", "Russia"]


def words(text: str) -> int:
    return len(text.split())


def pieces(blurb: str, article: Article) -> list[str]:
    """Return the article sentences the blurb is made of (fails the test if it is not)."""
    texts = {c.text for c in candidates(article)}

    def split(rest: str) -> list[str] | None:
        if not rest:
            return []
        for text in texts:
            if rest == text or rest.startswith(text + " "):
                tail = split(rest[len(text) + 1:])
                if tail is not None:
                    return [text, *tail]
        return None

    parts = split(blurb)
    assert parts is not None, f"not verbatim article sentences: {blurb!r}"
    return parts


def check_blurb(blurb: str, article: Article, max_words: int) -> list[str]:
    """Assert the blurb rules: budget, 1-3 whole sentences, verbatim, none repeated."""
    assert 0 < words(blurb) <= max_words
    parts = pieces(blurb, article)
    assert 1 <= len(parts) <= 3
    assert len(set(parts)) == len(parts)
    for part in parts:
        assert part in article.text
    return parts


# ---------------------------------------------------------------- sentences

def test_sentences_are_offsets_into_the_original_string():
    text = ("Dr. Smith met J. K. Rowling in the U.S. The talks cost $3.5 million on Jan. 5 at "
            "10 a.m. local time. He said: “It works.” Then he left… Really? ‘I can’t say,’ "
            "she said. ‘Tony wanted it. Tony’s wife will be there.’ Another one.")
    spans = sentences.split(text)
    got = [s.text_of(text) for s in spans]
    assert got == [
        "Dr. Smith met J. K. Rowling in the U.S.",
        "The talks cost $3.5 million on Jan. 5 at 10 a.m. local time.",
        "He said: “It works.”",
        "Then he left…",
        "Really?",
        "‘I can’t say,’ she said.",
        "‘Tony wanted it.",
        "Tony’s wife will be there.’",
        "Another one.",
    ]
    assert all(text[s.start:s.end] == t for s, t in zip(spans, got))


def test_blocks_split_lists_and_headings_but_join_wrapped_prose():
    wrapped = ("The council voted on Tuesday to plant two thousand street trees\n"
               "along the city's hottest avenues, a plan that engineers say will\n"
               "cool the pavements by several degrees.")
    listing = "Heading Here\n• first item\n• second item\nJane Doe"
    text = wrapped + "\n\n" + listing
    got = [text[a:b] for a, b in sentences.blocks(text)]
    assert got == [wrapped, "Heading Here", "• first item", "• second item", "Jane Doe"]


def test_split_handles_empty_and_blank_text():
    assert sentences.split("") == []
    assert sentences.split(" \n\n \t\n") == []


# ---------------------------------------------------------------- the seed article

@pytest.fixture
def seed_raw() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["default", "lead"])
def test_seed_after_extraction_meets_the_rules(seed_raw, name):
    article = extract(RawDocument(source=str(SEED), body=seed_raw, kind="text"))
    blurb = make_summarizer(SummarizeSection(), name).summarize(article)
    check_blurb(blurb, article, 60)
    assert not [bad for bad in SEED_FORBIDDEN if bad.lower() in blurb.lower()]
    assert any(word.lower() in blurb.lower() for word in SEED_TOPIC)


@pytest.mark.parametrize("name", ["default", "lead"])
def test_seed_raw_text_is_cleaned_by_the_summariser_alone(seed_raw, name):
    article = Article(text=seed_raw)
    blurb = make_summarizer(SummarizeSection(), name).summarize(article)
    check_blurb(blurb, article, 60)
    assert not [bad for bad in SEED_FORBIDDEN if bad.lower() in blurb.lower()]
    assert "?" not in blurb and "`" not in blurb
    assert blurb.startswith("Upon his return from the United States, Dmitry Bakanov")


def test_seed_raw_candidates_exclude_every_non_prose_line(seed_raw):
    texts = [c.text for c in candidates(Article(text=seed_raw))]
    joined = "\n".join(texts)
    for bad in SEED_FORBIDDEN:
        assert bad not in joined
    assert "The Path Forward" not in joined
    assert len(texts) == 22


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=120))
def test_seed_respects_any_word_budget(max_words):
    article = Article(text=SEED.read_text(encoding="utf-8"))
    summarizer = RankSummarizer(SummarizeSection(max_words=max_words))
    if max_words < 12:                   # the article's shortest sentence has 12 words
        with pytest.raises(SourceError, match=f"no sentence fits within {max_words} words"):
            summarizer.summarize(article)
    else:
        check_blurb(summarizer.summarize(article), article, max_words)


# ---------------------------------------------------------------- filters

JUNK_ARTICLE = """Harbour Bridge Repairs Begin

By Jane Doe

Photo: Harbour Bridge at dawn (Getty Images)

Updated at 10:42, 3 March 2025

SYDNEY (Reuters) — Engineers began repairing the Harbour Bridge on Monday after inspectors found corroded bolts in its northern arch.

The repairs will close two lanes of the Harbour Bridge for six weeks, the city said.

Key facts about the Harbour Bridge repairs:

• Harbour Bridge repairs cost 40 million dollars in total this year.
- Harbour Bridge lanes reopen in April after the repairs finish.
1. Harbour Bridge repairs are the first since 1998 on the arch.

Why did the Harbour Bridge bolts corrode so fast?

Jane Doe

Jane Doe covers Harbour Bridge transport and infrastructure for the paper and lives in Sydney.
"""


def test_headings_bullets_bylines_captions_and_datelines_are_never_chosen():
    article = Article(text=JUNK_ARTICLE, title="Harbour Bridge repairs begin")
    texts = [c.text for c in candidates(article)]
    assert texts[0].startswith("Engineers began repairing")        # dateline cut off
    joined = "\n".join(texts)
    for bad in ("Repairs Begin", "By Jane", "Photo:", "Getty", "Updated at", "(Reuters)",
                "Key facts", "40 million", "reopen in April", "since 1998", "covers Harbour"):
        assert bad not in joined
    for summarizer in (RankSummarizer(SummarizeSection()), LeadSummarizer(SummarizeSection())):
        blurb = summarizer.summarize(article)
        check_blurb(blurb, article, 60)
        assert blurb.startswith("Engineers began repairing the Harbour Bridge on Monday")
        assert "?" not in blurb


def test_author_bio_is_dropped_when_the_author_is_known():
    text = ("The museum reopened its west wing on Friday after a two-year restoration.\n\n"
            "Jane Doe writes about museums, galleries and the people who restore them.")
    texts = [c.text for c in candidates(Article(text=text, author="Jane Doe"))]
    assert texts == ["The museum reopened its west wing on Friday after a two-year restoration."]


def test_questions_and_pull_quotes_are_used_only_when_nothing_else_is_left():
    weak = "Is the new bridge safe for cyclists at night?\n\n“It is the safest bridge we ever built.”"
    plain = "The new bridge opens to cyclists on Monday after a year of works."
    article = Article(text=weak + "\n\n" + plain)
    for summarizer in (RankSummarizer(SummarizeSection()), LeadSummarizer(SummarizeSection())):
        assert summarizer.summarize(article) == plain
        assert summarizer.summarize(Article(text=weak)).startswith("Is the new bridge safe")


# ---------------------------------------------------------------- the default ranker

BUDGET_ARTICLE = (
    "The city council approved a plan on Tuesday to plant two thousand street trees along the "
    "hottest avenues, where summer pavements now reach fifty degrees. "
    "Supporters who filled the public gallery for the evening vote cheered, and several of them "
    "described at length how the neighbourhood had changed over the decades, how shops had "
    "closed, how buses had stopped coming and how the summers had become hotter every year. "
    "The street trees will be planted by autumn and should cool the avenues by several degrees."
)


def test_rank_uses_the_budget_better_than_the_lead():
    article = Article(text=BUDGET_ARTICLE, title="Council approves street trees for hottest avenues")
    lead = LeadSummarizer(SummarizeSection()).summarize(article)
    ranked = RankSummarizer(SummarizeSection()).summarize(article)
    assert len(pieces(lead, article)) == 1              # the second sentence does not fit
    parts = check_blurb(ranked, article, 60)
    assert parts[0] == lead and parts[1].startswith("The street trees will be planted")


def test_rank_prefers_a_fitting_sentence_over_an_overlong_lead():
    long_lead = " ".join(["The harbour"] + ["very"] * 70 + ["busy today."])
    text = long_lead + " Ferries to the islands were cancelled because of the storm."
    blurb = RankSummarizer(SummarizeSection()).summarize(Article(text=text))
    assert blurb == "Ferries to the islands were cancelled because of the storm."


def test_repeated_sentences_are_chosen_once():
    sentence = "The library will open on Sundays from next month, the council said."
    text = "\n\n".join([sentence] * 4)
    assert RankSummarizer(SummarizeSection()).summarize(Article(text=text)) == sentence


def test_no_fitting_sentence_falls_back_to_the_description_or_fails():
    text = " ".join(["word"] * 80) + "."
    summarizer = RankSummarizer(SummarizeSection(max_words=20))
    described = Article(text=text, description="A short  description of the story.")
    assert summarizer.summarize(described) == "A short description of the story."
    with pytest.raises(SourceError, match="no sentence fits within 20 words"):
        summarizer.summarize(Article(text=text, url="https://example.org/a"))
    with pytest.raises(SourceError, match="no sentence fits"):
        LeadSummarizer(SummarizeSection(max_words=20)).summarize(Article(text=text))


@pytest.mark.parametrize("text", ["", "   \n\n  ", "Menu\n\nHome\n\nAbout us", "• one\n• two"])
def test_no_usable_sentence_is_a_source_error(text):
    for summarizer in (RankSummarizer(SummarizeSection()), LeadSummarizer(SummarizeSection())):
        with pytest.raises(SourceError, match="no usable sentence"):
            summarizer.summarize(Article(text=text))


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400),
       title=st.text(max_size=40), max_words=st.integers(min_value=1, max_value=80))
def test_arbitrary_text_gives_a_blurb_or_a_source_error(text, title, max_words):
    article = Article(text=text, title=title)
    for summarizer in (RankSummarizer(SummarizeSection(max_words=max_words)),
                       LeadSummarizer(SummarizeSection(max_words=max_words))):
        try:
            blurb = summarizer.summarize(article)
        except SourceError:
            continue
        assert isinstance(blurb, str) and 0 < words(blurb) <= max_words
        pieces(blurb, article)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([
    "The mayor opened the new bridge on Monday.", "Dr. Lee said the U.S. plan was late.",
    "Prices rose 3.5 per cent in May.", "“We are ready,” she said.", "Why now?",
    "Photo: Getty Images", "• A bullet line", "By Sam Roe", "LONDON (Reuters) — Markets fell.",
    "Heading Without Stop", "", "\n",
]), min_size=1, max_size=30), st.sampled_from([" ", "\n", "\n\n"]))
def test_mixed_article_blurbs_follow_the_rules(parts, glue):
    article = Article(text=glue.join(parts))
    try:
        blurb = RankSummarizer(SummarizeSection(max_words=30)).summarize(article)
    except SourceError:
        return
    check_blurb(blurb, article, 30)
    for bad in ("Photo:", "•", "(Reuters)"):
        assert bad not in blurb
    if "\n" in glue:          # on its own line a byline is known; glued to prose it may not be
        assert "By Sam" not in blurb


# ---------------------------------------------------------------- plugins

@pytest.mark.parametrize("name, cls", [
    (None, RankSummarizer), ("default", RankSummarizer), ("lead", LeadSummarizer),
    ("llm", LLMSummarizer), ("newsletter.summarize:LeadSummarizer", LeadSummarizer),
])
def test_make_summarizer_loads_plugins(name, cls):
    summarizer = make_summarizer(SummarizeSection(), name)
    assert type(summarizer) is cls and isinstance(summarizer, Summarizer)


def test_make_summarizer_uses_the_configured_name():
    assert type(make_summarizer(SummarizeSection(summarizer="lead"))) is LeadSummarizer


@pytest.mark.parametrize("name, message", [
    ("nope", "unknown summariser 'nope'"),
    ("newsletter.not_a_module:Thing", "cannot load 'newsletter.not_a_module:Thing'"),
    ("newsletter.summarize:Missing", "cannot load 'newsletter.summarize:Missing'"),
    ("newsletter.models:Article", "'newsletter.models:Article' is not a Summarizer"),
])
def test_unknown_or_broken_plugins_are_config_errors(name, message):
    with pytest.raises(ConfigError, match=message):
        make_summarizer(SummarizeSection(), name)


def test_unknown_plugin_error_lists_the_known_names():
    with pytest.raises(ConfigError) as info:
        make_summarizer(SummarizeSection(summarizer="nope"))
    assert "default" in str(info.value) and "lead" in str(info.value)


# ---------------------------------------------------------------- editors' rules (default ranker)

def rank(text: str, title: str = "") -> tuple[str, Article]:
    article = Article(text=text, title=title)
    return RankSummarizer(SummarizeSection()).summarize(article), article


# A standfirst restating the lead's fact, the way publishers print them above the story.
SAME_FACT_ARTICLES = [
    ("More than 400 volunteers joined the search for a missing hiker in the Cairngorms on Sunday.",
     ("More than 400 people turned out on Sunday to search the Cairngorms for Tom Reid, a hiker "
      "who has been missing since Friday."),
     ("Mountain rescue teams said low cloud and snow had slowed the search across the plateau.\n\n"
      "Police Scotland asked anyone who saw Tom Reid near the Cairn Gorm car park to call them.")),
    (("Eighteen months after a fire gutted the old mill in Hebden Bridge, the town has reopened "
      "it as a museum."),
     ("Eighteen months later, the mill reopened on Saturday as a museum of the town's weaving "
      "history."),
     ("Volunteers rebuilt the looms from parts found in the ashes and in barns across the "
      "valley.\n\nEntry to the museum is free until the end of the summer, the council said.")),
]


@pytest.mark.parametrize("standfirst, lead, rest", SAME_FACT_ARTICLES,
                         ids=["more than 400", "eighteen months"])
def test_a_standfirst_and_a_lead_stating_the_same_fact_are_not_both_chosen(standfirst, lead, rest):
    # Both fit the budget together and each scores well alone: only the redundancy rule keeps
    # the second out.
    blurb, article = rank(f"{standfirst}\n\n{lead}\n\n{rest}")
    parts = check_blurb(blurb, article, 60)
    assert (standfirst in parts) + (lead in parts) == 1, parts
    assert len(parts) >= 2                      # the budget goes to a further fact instead


REFERENCE_ARTICLE = (
    "The city council approved a new cycle lane on Market Street on Tuesday after a long "
    "debate.\n\n{antecedent}\n\n"
    "{opener} the lane would be finished by June and would link the railway station to the "
    "university campus.")
LONG_ANTECEDENT = (
    "Councillor Tom Moss, who chairs the transport committee and has spent the past ten years "
    "campaigning for safer junctions, wider pavements and slower traffic across the whole of the "
    "city, proposed the plan at the meeting with the backing of shop owners, residents, two local "
    "schools and both of the city's cycling clubs.")


@pytest.mark.parametrize("opener", ["He said", "They said", "The answer, he said, is that",
                                    "But officials said", "However, officials said",
                                    "Also, officials said"])
def test_a_sentence_opening_on_a_reference_is_not_chosen_without_its_antecedent(opener):
    # The third sentence fits beside the lead and would be chosen with it; its antecedent (the
    # second) is too long to come along, so the reference would dangle.
    text = REFERENCE_ARTICLE.format(antecedent=LONG_ANTECEDENT, opener=opener)
    blurb, article = rank(text, "Council approves Market Street cycle lane")
    check_blurb(blurb, article, 60)
    assert opener not in blurb
    assert blurb.startswith("The city council approved a new cycle lane")


def test_a_sentence_opening_on_a_reference_is_chosen_with_its_antecedent():
    text = ("The city council approved a new cycle lane on Market Street on Tuesday after a long "
            "debate.\n\nCouncillor Tom Moss proposed the cycle lane.\n\n"
            "He said the Market Street cycle lane would be finished by June and would cost the "
            "council less than its budget.")
    blurb, article = rank(text, "Council approves Market Street cycle lane")
    parts = check_blurb(blurb, article, 60)
    assert parts[1:] == ["Councillor Tom Moss proposed the cycle lane.",
                         ("He said the Market Street cycle lane would be finished by June and "
                          "would cost the council less than its budget.")]


@pytest.mark.parametrize("sentence, dangles", [
    ("He said the Harbour Bridge would close for repairs in June.", True),
    ("It will close the Harbour Bridge for repairs in June.", True),
    ("However, the Harbour Bridge will close for repairs in June.", True),
    ("The answer is to close the Harbour Bridge for repairs in June.", True),
    ("‘He is wrong to close the Harbour Bridge for repairs,’ she said.", True),
    ("‘I want the Harbour Bridge repaired by June,’ the mayor said.", False),   # quoted "I"
    ("This week the Harbour Bridge closed for repairs.", False),                # a date
    ("US engineers said the Harbour Bridge would close for repairs in June.", False),
    ("Both Leeds and York closed bridges for repairs in June.", False),
    ("Helen Moss said the Harbour Bridge would close for repairs in June.", False),
], ids=["he", "it", "however", "the answer", "quoted he", "quoted i", "this week", "us",
        "both names", "helen"])
def test_an_opening_reference_without_anything_before_it_is_left_out(sentence, dangles):
    # Two unrelated sentences that both fit: the ranker takes both unless the first dangles.
    other = "The city council approved a new cycle lane on Market Street on Tuesday."
    blurb, article = rank(sentence + "\n\n" + other)
    assert check_blurb(blurb, article, 60) == ([other] if dangles else [sentence, other])


KEY_FIGURE_ARTICLE = (
    "Hundreds of volunteers joined the search for missing hiker Tom Reid in the Cairngorms on "
    "Sunday.\n\n"
    "More than 400 volunteers joined the search for hiker Tom Reid in the Cairngorms on Sunday.\n\n"
    "Mountain rescue teams said low cloud and snow had slowed the search across the plateau.\n\n"
    "Police thanked the 400 volunteers and asked them to return at first light on Monday.")


def test_of_two_sentences_stating_one_fact_the_one_with_the_key_figure_is_chosen():
    # "400" is the key figure (the article repeats it). The two opening sentences state one fact;
    # the vaguer one comes first and scores higher, so without the key-figure rule the
    # redundancy rule would keep it and drop the number.
    blurb, article = rank(KEY_FIGURE_ARTICLE, "Volunteers search Cairngorms for missing hiker")
    parts = check_blurb(blurb, article, 60)
    assert parts[0].startswith("More than 400 volunteers joined the search")
    assert not any(part.startswith("Hundreds of volunteers") for part in parts)


def test_glued_captions_and_capitalised_labels_count_as_weak_sentences():
    text = ("Glasgow hooker Dougie Hall will retire at the end of the season after thirteen years "
            "in the professional game.\n\n"
            "Hall is hanging up his boots after 13 years of professional rugby As retirement draws "
            "closer you do start to think about the game.\n\n"
            "REASON IT MIGHT HAPPEN: Hall is close to the club's incoming coaching staff.")
    weights = [c.weight for c in candidates(Article(text=text))]
    assert weights[0] == 1.0 and weights[1] < 1.0 and weights[2] < 1.0
