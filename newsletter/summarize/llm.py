"""A summariser that asks an OpenAI-compatible chat-completions endpoint (llama.cpp, Ollama, hosted)."""

from __future__ import annotations

import logging
import re

import requests

from ..config import SummarizeSection, secret
from ..errors import ConfigError, SourceError
from ..models import Article
from . import sentences
from .base import Summarizer, word_count

log = logging.getLogger(__name__)

# About 3,000 tokens of article: enough for any news story's substance, small enough for the
# context window of the local models people run, and it bounds the cost per article.
MAX_ARTICLE_CHARS = 12_000
# Reasoning models (Qwen3, DeepSeek-R1 through llama.cpp or Ollama) may put their thinking first.
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_PREAMBLE = re.compile(r"^(?:summary|blurb|tl;?dr)\s*:\s*", re.IGNORECASE)
_WRAPPING_QUOTES = ('"', '"'), ("“", "”"), ("'", "'")


class LLMSummarizer(Summarizer):
    """Summaries written by a chat model behind an OpenAI-compatible HTTP API."""

    def __init__(self, section: SummarizeSection):
        super().__init__(section)
        llm = section.llm
        if not llm.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"summarize.llm.base_url must be an http(s) URL, got {llm.base_url!r}")
        if llm.timeout <= 0:
            raise ConfigError("summarize.llm.timeout must be positive")
        self.endpoint = llm.base_url.rstrip("/") + "/chat/completions"
        self.model = llm.model
        self.timeout = llm.timeout
        self.prompt = llm.prompt.replace("{max_words}", str(self.max_words))
        # Read the key now so that a missing variable stops the run before any article is sent.
        self._key = secret(llm.api_key_env, "summarize.llm.api_key_env") if llm.api_key_env else ""
        self._session = requests.Session()
        if llm.fallback.strip().lower() == "llm":
            raise ConfigError("summarize.llm.fallback cannot be llm itself: name an offline summariser "
                              '("default" or "lead") or "" for none')
        self.fallback_name = llm.fallback.strip()
        self._fallback: Summarizer | None = None
        self._down = ""             # why the endpoint is not asked again in this run ("" = it is)

    def summarize(self, article: Article) -> str:
        """Return the model's blurb within max_words.

        When the endpoint fails (unreachable, timed out, an HTTP error, an unusable answer), the
        blurb comes from the summarize.llm.fallback summariser, with one warning per run; after
        an unreachable or timed-out endpoint the rest of the run does not ask it again. Raises
        SourceError when there is no fallback, ConfigError for refused credentials.
        """
        if self._down and self.fallback_name:
            return self._fallback_summary(article)
        try:
            return self._ask(article)
        except SourceError as err:
            if not self.fallback_name:
                raise
            self._warn_fallback(str(err))
            return self._fallback_summary(article)

    def _ask(self, article: Article) -> str:
        """Return the model's blurb; raise SourceError when the endpoint fails."""
        payload = {"model": self.model, "stream": False, "messages": [
            {"role": "system", "content": self.prompt},
            {"role": "user", "content": _user_message(article)},
        ]}
        data = self._post(payload)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise SourceError(f"LLM endpoint {self.endpoint}: answer has no choices[0].message.content"
                              ) from err
        if not isinstance(content, str):
            raise SourceError(f"LLM endpoint {self.endpoint}: message content is not text")
        blurb = fit_words(clean_answer(content), self.max_words)
        if not blurb:
            raise SourceError(f"LLM endpoint {self.endpoint}: empty summary")
        return blurb

    def _warn_fallback(self, why: str) -> None:
        """Log, once per run, that blurbs now come from the fallback summariser, and why."""
        if getattr(self, "_warned", False):
            log.debug("%s; blurb written by the %r summariser", why, self.fallback_name)
            return
        self._warned = True
        log.warning("%s; blurbs are written by the offline %r summariser instead "
                    "(summarize.llm.fallback)", why, self.fallback_name)

    def _fallback_summary(self, article: Article) -> str:
        """Return the fallback summariser's blurb (built on first use; ConfigError if unknown)."""
        if self._fallback is None:
            from . import make_summarizer       # the plugin loader; imported late (it lists us)

            self._fallback = make_summarizer(self.section, self.fallback_name)
        return self._fallback.summarize(article)

    def _post(self, payload: dict) -> dict:
        """Return the endpoint's JSON answer; raise SourceError (ConfigError for refused credentials)."""
        headers = {"Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        where = f"LLM endpoint {self.endpoint}"
        try:
            resp = self._session.post(self.endpoint, json=payload, headers=headers,
                                      timeout=self.timeout)
        except requests.Timeout as err:
            self._down = "timeout"
            raise SourceError(f"{where} did not answer within {self.timeout:g} s") from err
        except requests.RequestException as err:
            self._down = "unreachable"
            raise SourceError(f"{where} cannot be reached: {type(err).__name__}") from err
        if resp.status_code in (401, 403):
            # Every article would fail the same way: this is configuration, not one bad article.
            raise ConfigError(f"{where} refused the credentials (HTTP {resp.status_code}); "
                              f"check summarize.llm.api_key_env")
        if resp.status_code >= 400:
            raise SourceError(f"{where} answered HTTP {resp.status_code}{_reason(resp)}")
        try:
            data = resp.json()
        except ValueError as err:
            raise SourceError(f"{where} answered with invalid JSON") from err
        if not isinstance(data, dict):
            raise SourceError(f"{where} answered with JSON that is not an object")
        return data


def _user_message(article: Article) -> str:
    """Return the user message: the title and the article text, cut at a paragraph or word."""
    text = article.text.strip()
    if len(text) > MAX_ARTICLE_CHARS:
        cut = text.rfind("\n", 0, MAX_ARTICLE_CHARS)
        if cut < MAX_ARTICLE_CHARS // 2:
            cut = text.rfind(" ", 0, MAX_ARTICLE_CHARS)
        text = text[: cut if cut > 0 else MAX_ARTICLE_CHARS].rstrip()
    title = " ".join(article.title.split())
    return f"Title: {title}\n\n{text}" if title else text


def _reason(resp: requests.Response) -> str:
    """Return ": <server's error message>" on one short line, or "" when there is none."""
    message = ""
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        message = str(err.get("message", "") if isinstance(err, dict) else err or "")
    except ValueError:
        message = resp.reason or ""
    message = " ".join(message.split())[:160]
    return f": {message}" if message else ""


def clean_answer(content: str) -> str:
    """Return the answer without thinking blocks, a "Summary:" preamble, wrapping quotes or newlines."""
    text = _THINKING.sub("", content)
    text = " ".join(text.split())
    text = _PREAMBLE.sub("", text)
    for left, right in _WRAPPING_QUOTES:
        inner = text[1:-1]
        if len(text) > 2 and text[0] == left and text[-1] == right and left not in inner \
                and right not in inner:
            text = inner.strip()            # the whole answer quoted, not a quotation inside it
    return text


def fit_words(text: str, max_words: int) -> str:
    """Return text's leading sentences within max_words; a lone long sentence is cut with "…"."""
    if word_count(text) <= max_words:
        return text
    kept: list[str] = []
    used = 0
    for span in sentences.split(text):
        sentence = span.text_of(text)
        n = word_count(sentence)
        if used + n > max_words:
            break
        kept.append(sentence)
        used += n
    if kept:
        return " ".join(kept)
    # The model ignored the budget in its very first sentence: its own words, so cut them.
    log.debug("LLM summary's first sentence exceeds %d words; shortened", max_words)
    return " ".join(text.split()[:max_words]).rstrip(",;:–—-") + "…"
