"""Merge fields that behave like Jinja although the issue is rendered once: fallbacks, default(),
{% if %} blocks, in templates, the editor's Markdown and the subject; saved with the render and
evaluated per subscriber; unknown fields are build warnings."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from config_support import build_config
from newsletter.errors import ConfigError
from newsletter.models import Issue, Item, Subscriber
from newsletter.personalize.message import MessageFactory
from newsletter.render.checks import check_fields, check_personalised, check_rendered
from newsletter.render.issue import render_issue
from newsletter.render.merge_eval import MergeEvaluator
from newsletter.render.saved import load_rendered, save_rendered

GREETING = ("<p class=\"greet\">Hi {{ subscriber.name or 'there' }}{% if subscriber.city %} in "
            "{{ subscriber.city }}{% endif %}! Dear {{ subscriber.name | default('friend') }}, "
            "{{ subscriber['First Name'] }}.</p>")
HEADER = """    <mj-section><mj-column><mj-text css-class="txt">
          {greeting}
{{{{ issue.intro | markdown }}}}
{{{{ issue.outro | markdown }}}}
    </mj-text></mj-column></mj-section>
"""
TEXT = """{greeting}
{{{{ issue.title }}}}
{{{{ issue.intro | markdown_text }}}}
{{{{ issue.outro | markdown_text }}}}
Unsubscribe: {{{{ subscriber.unsubscribe_url }}}}
"""
PEOPLE = {
    "nameless": Subscriber(email="anon@example.net", name="", fields={"city": "Oslo"}),
    "named": Subscriber(email="bo@example.net", name="Bo <b> & Co", fields={"First Name": "Bob"}),
}


def one_item_issue(**more) -> Issue:
    return Issue(id="w1", title="Week one",
                 items=(Item(url="https://example.org/a", title="A story", summary="It happened."),), **more)


@pytest.fixture
def config(tmp_path):
    partials = tmp_path / "templates" / "partials"
    partials.mkdir(parents=True)
    (partials / "header.mjml.j2").write_text(HEADER.format(greeting=GREETING), encoding="utf-8")
    text = GREETING.replace('<p class="greet">', "").replace("</p>", "")
    (tmp_path / "templates" / "digest.txt.j2").write_text(TEXT.format(greeting=text), encoding="utf-8")
    return build_config(tmp_path, newsletter={"subject": "{title} for {{ subscriber.name or 'you' }}",
                                              "postal_address": "1 Road"})


def message(rendered, config, who: str):
    factory = MessageFactory(rendered, config, list_name="default")
    msg = message_from_bytes(factory.build(factory.recipient(PEOPLE[who])), policy=policy.default)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert check_personalised(html, text) == []           # no token, no Jinja left
    return msg["Subject"], html, text


def test_fallbacks_default_and_if_work_per_subscriber_in_html_text_and_subject(config):
    rendered = render_issue(one_item_issue(), config)
    subject, html, text = message(rendered, config, "nameless")
    assert subject == "Week one for you"
    assert "Hi there in Oslo! Dear friend, ." in html
    assert "Hi there in Oslo! Dear friend, ." in text
    subject, html, text = message(rendered, config, "named")
    assert subject == "Week one for Bo <b> & Co"
    assert "Hi Bo &lt;b&gt; &amp; Co! Dear Bo &lt;b&gt; &amp; Co, Bob.</p>" in html   # escaped in HTML
    assert "Hi Bo <b> & Co! Dear Bo <b> & Co, Bob." in text                           # as is in text


def test_the_issue_is_rendered_once_and_the_snippets_travel_with_the_saved_render(config):
    rendered = render_issue(one_item_issue(), config)
    sources = [source for _field, source in rendered.merge_fields]
    assert sources == ["{{ subscriber.name or 'there' }}",
                       "{% if subscriber.city %} in {{ subscriber.city }}{% endif %}",
                       "{{ subscriber.name | default('friend') }}",
                       "{{ subscriber.name or 'you' }}"]
    # the same expression in the HTML and the text part is one snippet; bare fields are no snippet
    assert rendered.html.count(rendered.nonce + "_merge__0_TLN") == 1
    assert rendered.text.count(rendered.nonce + "_merge__0_TLN") == 1
    save_rendered(config.paths.state, rendered)
    loaded = load_rendered(config.paths.state, "w1")
    assert loaded.merge_fields == rendered.merge_fields
    assert message(loaded, config, "nameless")[1] == message(rendered, config, "nameless")[1]


def test_merge_fields_in_the_editors_markdown(config):
    issue = one_item_issue(intro="Hello **{{ subscriber.name or 'reader' }}**{% if subscriber.city %}, "
                                 "greetings to {{ subscriber.city }}{% endif %}.",
                           outro="Bye {{ subscriber.name }}.")
    rendered = render_issue(issue, config)
    assert check_rendered(rendered, issue) == []
    _subject, html, text = message(rendered, config, "nameless")
    assert "Hello <strong>reader</strong>, greetings to Oslo." in html
    assert "Hello reader, greetings to Oslo." in text
    assert "Bye ." in text
    _subject, html, text = message(rendered, config, "named")
    assert "Hello <strong>Bo &lt;b&gt; &amp; Co</strong>." in html
    assert "Bye Bo <b> & Co." in text
    # The inbox preview line is the same for everyone: the fallbacks.
    assert rendered.preheader == "Hello reader."


def test_a_bad_merge_field_in_the_issue_text_is_a_warning_not_a_crash(config):
    issue = one_item_issue(intro="Hi {{ subscriber.name or }} and {% if subscriber.city %}unclosed")
    rendered = render_issue(issue, config)
    warnings = check_rendered(rendered, issue)
    assert any(w.startswith("intro: not a valid merge field") for w in warnings), warnings
    assert any("leftover template marker" in w for w in warnings), warnings


def test_a_snippet_that_uses_other_names_is_a_warning(config):
    issue = one_item_issue(intro="Hi {{ subscriber.name or issue.title }}")
    warnings = check_rendered(render_issue(issue, config), issue)
    assert ("intro: merge field '{{ subscriber.name or issue.title }}' uses issue: only `subscriber` "
            "is known per subscriber, so it is empty there") in warnings, warnings


def test_markup_inside_a_per_subscriber_block_of_a_template_is_refused_with_its_line(config):
    (config.paths.templates / "partials" / "header.mjml.j2").write_text(
        '    <mj-section><mj-column><mj-text>\n'
        '{% if subscriber.vip %}<p>VIP</p>{% endif %}\n'
        '    </mj-text></mj-column></mj-section>\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"header\.mjml\.j2:2: a per-subscriber .* not markup"):
        render_issue(one_item_issue(), config)


def test_a_template_merge_field_with_a_syntax_error_is_a_config_error(config):
    (config.paths.templates / "partials" / "header.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>{{ subscriber.name or }}</mj-text></mj-column></mj-section>\n",
        encoding="utf-8")
    with pytest.raises(ConfigError, match=r"header\.mjml\.j2:1"):
        render_issue(one_item_issue(), config)


def test_unknown_fields_are_warned_against_the_fields_subscribers_have(config):
    issue = one_item_issue(intro="In {{ subscriber.citty or 'your town' }} and {{ subscriber.plan }}")
    rendered = render_issue(issue, config)
    warnings = check_fields(rendered, {"city", "first_name"})
    assert sorted(w.split(" in ")[0] for w in warnings) == ["unknown merge field subscriber.citty",
                                                            "unknown merge field subscriber.plan"]
    assert "fields of the imported lists: city, first_name" in warnings[0]
    assert check_fields(rendered, {"city", "first_name", "citty", "plan"}) == []


def test_a_merge_field_failing_for_one_subscriber_fails_that_subscriber_only(config):
    issue = one_item_issue(intro="{{ subscriber.age | int + 1 }} {{ (1 / (subscriber.zero | int)) }}")
    rendered = render_issue(issue, config)
    factory = MessageFactory(rendered, config, list_name="default")
    from newsletter.errors import RenderError
    with pytest.raises(RenderError, match="failed for z@example.net"):
        factory.recipient(Subscriber(email="z@example.net", fields={"zero": "0"}))
    assert factory.recipient(Subscriber(email="ok@example.net", fields={"zero": "2", "age": "40"}))


def test_evaluations_are_shared_by_subscribers_with_the_same_values():
    evaluator = MergeEvaluator([("merge__0", "{% if subscriber.city %}in {{ subscriber.city }}{% endif %}"),
                                ("merge__1", "{{ subscriber.name or 'there' }}")])
    towns = ["Oslo", "", "Lyon"] * 1000
    results = [evaluator({"city": town, "name": f"n{i}" if i % 2 else "", "email": f"{i}@x.org"})
               for i, town in enumerate(towns)]
    assert [r["merge__0"] for r in results[:3]] == ["in Oslo", "", "in Lyon"]
    assert [r["merge__1"] for r in results[:3]] == ["there", "n1", "there"]
    assert len(evaluator._snippets[0][-1]) == 3          # one evaluation per distinct city


def test_the_web_archive_shows_the_fallbacks_not_anyones_values(tmp_path, monkeypatch):
    from newsletter.web import create_app
    from web_support import SECRET, make_config, mark_sent, store

    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = make_config(tmp_path)
    store(cfg).add("rea@example.org", name="Rea Der", fields={"city": "Lyon"})
    issue = one_item_issue(intro="Hi {{ subscriber.name or 'reader' }}{% if subscriber.city %} in "
                                 "{{ subscriber.city }}{% endif %}!")
    save_rendered(cfg.paths.state, render_issue(issue, cfg))
    mark_sent(cfg, "w1")
    page = create_app(cfg).test_client().get("/archive/w1").get_data(as_text=True)
    assert "Hi reader!" in page and "NLT" not in page


def test_a_bad_merge_field_in_a_note_is_reported_once(config):
    item = Item(url="https://example.org/a", title="A story", summary="It happened.",
                note="Hi {{ subscriber.name or }}")
    issue = Issue(id="w1", title="Week one", items=(item,))
    (config.paths.templates / "digest.txt.j2").write_text(
        "{{ issue.items[0].note | markdown_text(prefix='| ') }}\n{{ subscriber.unsubscribe_url }}\n",
        encoding="utf-8")
    warnings = check_rendered(render_issue(issue, config), issue)
    assert len([w for w in warnings if "not a valid merge field" in w]) == 1, warnings
    assert [w for w in warnings if "not a valid merge field" in w][0].startswith("item 1 'A story' note: ")
