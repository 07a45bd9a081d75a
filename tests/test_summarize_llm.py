"""The LLM summariser against a real local HTTP server playing a chat-completions endpoint."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from werkzeug import Request, Response

from newsletter.config import LLMSection, SummarizeSection
from newsletter.errors import ConfigError, SourceError
from newsletter.models import Article
from newsletter.summarize import make_summarizer
from newsletter.summarize.llm import MAX_ARTICLE_CHARS, LLMSummarizer, clean_answer, fit_words

KEY = "sk-test-secret-0123456789"
ARTICLE = Article(text="The council approved two thousand street trees on Tuesday.\n\n"
                       "Planting starts in autumn.", title="Council approves street trees")


def answer(content) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "tiny",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}]}


def section(httpserver, max_words=60, **llm) -> SummarizeSection:
    llm.setdefault("base_url", httpserver.url_for("/v1"))
    llm.setdefault("model", "tiny")
    llm.setdefault("timeout", 10.0)
    llm.setdefault("fallback", "")          # errors surface; the fallback has its own tests
    return SummarizeSection(summarizer="llm", max_words=max_words, llm=LLMSection(**llm))


def test_success_sends_model_prompt_article_and_key(httpserver, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    httpserver.expect_request("/v1/chat/completions", method="POST",
                              headers={"Authorization": f"Bearer {KEY}"}
                              ).respond_with_json(answer("  The council will plant trees.\n"))
    summarizer = LLMSummarizer(section(httpserver, max_words=25, api_key_env="TEST_LLM_KEY"))
    assert summarizer.summarize(ARTICLE) == "The council will plant trees."
    request, _ = httpserver.log[0]
    body = json.loads(request.get_data())
    assert body["model"] == "tiny"
    system, user = body["messages"]
    assert system["role"] == "system" and "at most 25 words" in system["content"]
    assert user["role"] == "user"
    assert user["content"].startswith("Title: Council approves street trees\n\n")
    assert "Planting starts in autumn." in user["content"]


def test_no_key_configured_sends_no_authorization(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer("Trees."))
    assert LLMSummarizer(section(httpserver)).summarize(ARTICLE) == "Trees."
    request, _ = httpserver.log[0]
    assert "Authorization" not in request.headers


def test_missing_key_variable_is_a_config_error(httpserver, monkeypatch):
    monkeypatch.delenv("TEST_LLM_KEY", raising=False)
    with pytest.raises(ConfigError, match="TEST_LLM_KEY"):
        LLMSummarizer(section(httpserver, api_key_env="TEST_LLM_KEY"))


def test_server_error_is_a_source_error_naming_the_endpoint(httpserver, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "model crashed\nwhile loading"}}, status=500)
    with pytest.raises(SourceError) as info:
        LLMSummarizer(section(httpserver, api_key_env="TEST_LLM_KEY")).summarize(ARTICLE)
    message = str(info.value)
    assert httpserver.url_for("/v1/chat/completions") in message
    assert "HTTP 500: model crashed while loading" in message
    assert KEY not in message and "\n" not in message


def test_refused_credentials_are_a_config_error(httpserver, monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "invalid api key"}}, status=401)
    with pytest.raises(ConfigError, match="refused the credentials") as info:
        LLMSummarizer(section(httpserver, api_key_env="TEST_LLM_KEY")).summarize(ARTICLE)
    assert KEY not in str(info.value)


def test_timeout_is_a_source_error(httpserver):
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5)                   # held until the client has given up
        return Response(json.dumps(answer("late")), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(slow)
    try:
        with pytest.raises(SourceError, match=r"did not answer within 0\.05 s"):
            LLMSummarizer(section(httpserver, timeout=0.05)).summarize(ARTICLE)
    finally:
        release.set()


@pytest.mark.parametrize("body, message", [
    ("this is not json", "invalid JSON"),
    ("[1, 2]", "not an object"),
    ('{"choices": []}', "no choices"),
    ('{"choices": [{"message": {"content": null}}]}', "not text"),
    (json.dumps(answer("   ")), "empty summary"),
])
def test_malformed_answers_are_source_errors(httpserver, body, message):
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        body, content_type="application/json")
    with pytest.raises(SourceError, match=message):
        LLMSummarizer(section(httpserver)).summarize(ARTICLE)


def test_unreachable_endpoint_is_a_source_error():
    with socket.socket() as sock:            # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = SummarizeSection(llm=LLMSection(base_url=f"http://127.0.0.1:{port}/v1", timeout=5, fallback=""))
    with pytest.raises(SourceError, match=f"127.0.0.1:{port}/v1/chat/completions cannot be reached"):
        LLMSummarizer(cfg).summarize(ARTICLE)


def test_long_answers_lose_sentences_at_the_end(httpserver):
    text = ("<think>Let me count words first.</think>Summary: The council approved the trees. "
            "Planting starts in autumn. Residents cheered loudly at the meeting.")
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer(text))
    blurb = LLMSummarizer(section(httpserver, max_words=10)).summarize(ARTICLE)
    assert blurb == "The council approved the trees. Planting starts in autumn."


def test_long_articles_are_cut_before_sending(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(answer("Short."))
    article = Article(text="\n\n".join(["A paragraph of words about trees."] * 2000), title="T")
    LLMSummarizer(section(httpserver)).summarize(article)
    request, _ = httpserver.log[0]
    user = json.loads(request.get_data())["messages"][1]["content"]
    assert len(user) <= MAX_ARTICLE_CHARS + len("Title: T\n\n")
    assert user.endswith("A paragraph of words about trees.")


@pytest.mark.parametrize("base_url, timeout, message", [
    ("ftp://example.org", 10.0, "base_url must be an http"),
    ("http://127.0.0.1:9/v1", 0.0, "timeout must be positive"),
])
def test_bad_llm_config_is_a_config_error(base_url, timeout, message):
    with pytest.raises(ConfigError, match=message):
        LLMSummarizer(SummarizeSection(llm=LLMSection(base_url=base_url, timeout=timeout)))


def test_clean_answer_and_fit_words():
    assert clean_answer('  "The whole answer quoted."  ') == "The whole answer quoted."
    assert clean_answer('“Trees,” she said.') == "“Trees,” she said."
    assert fit_words("one two three four five six. Seven.", 3) == "one two three…"
    assert fit_words("Short one. Another short one here.", 6) == "Short one. Another short one here."


def _free_port() -> int:
    with socket.socket() as sock:            # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LONG = Article(title="Council approves street trees", text=(
    "The city council approved two thousand new street trees on Tuesday. "
    "The trees will shade the hottest streets first, the council said.\n\n"
    "Planting starts in autumn and takes three years. Residents may ask for a tree outside their home."))


def test_an_endpoint_that_is_down_falls_back_to_the_offline_summariser_with_one_warning(caplog):
    cfg = SummarizeSection(llm=LLMSection(base_url=f"http://127.0.0.1:{_free_port()}/v1", timeout=5))
    summarizer = LLMSummarizer(cfg)
    with caplog.at_level("WARNING", logger="newsletter"):
        first, second = summarizer.summarize(LONG), summarizer.summarize(LONG)
    offline = make_summarizer(cfg, "default").summarize(LONG)
    assert first == second == offline and first
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "cannot be reached" in warnings[0] and "offline 'default' summariser instead" in warnings[0]


def test_a_server_error_falls_back_per_article_and_the_endpoint_is_asked_again(httpserver):
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json({"error": "busy"}, status=503)
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(answer("Trees for the city."))
    summarizer = LLMSummarizer(section(httpserver, fallback="lead"))
    assert summarizer.summarize(LONG).startswith("The city council approved two thousand new street trees")
    assert summarizer.summarize(LONG) == "Trees for the city."


def test_the_fallback_cannot_be_the_llm_itself(httpserver):
    with pytest.raises(ConfigError, match="fallback cannot be llm"):
        LLMSummarizer(section(httpserver, fallback="llm"))


def test_add_with_the_endpoint_down_adds_every_article_and_warns_once(project):
    config = project.config_file
    config.write_text(config.read_text(encoding="utf-8")
                      .replace('summarizer = "default"', 'summarizer = "llm"')
                      .replace('base_url = "http://127.0.0.1:8080/v1"', f'base_url = "http://127.0.0.1:{_free_port()}/v1"'),
                      encoding="utf-8")
    project.run("issue", "new", "w1")
    articles = sorted(str(p) for p in (project.root / "articles").glob("*.html"))
    result = project.run("add", *articles, "--issue", "w1")
    assert f"{len(articles)} added to w1, 0 skipped, 0 failed" in result.stdout
    assert result.stderr.count("cannot be reached") == 1 and "summarize.llm.fallback" in result.stderr
