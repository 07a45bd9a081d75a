"""Security of the web app: CSRF, headers, cookies, error pages without traces, input fuzzing."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from newsletter.db import get_engine
from newsletter.web import create_app
from newsletter.web.background import BackgroundJobs
from newsletter.web.ratelimit import SlidingWindowLimit as RateLimiter
from newsletter.web.security import PAGE_CSP
from newsletter.web.theme import contrast, make_theme
from web_support import (BASE_URL, SECRET, captured_logs, confirm_token, csrf_from, make_config, settle,
                         status_of, store, unsubscribe_token)

ORIGIN = BASE_URL


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    # Port 9 (discard) on loopback refuses connections: a sign-up that gets through CSRF tries
    # to mail and fails fast, which the app logs without telling the visitor.
    return make_config(tmp_path, smtp_port=9, rate_limit_per_hour=1000)


# -- headers --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/subscribe", "/archive/", "/no-such-page", "/u/not-a-token"])
def test_security_headers_on_every_page(client, path):
    resp = client.get(path)
    assert resp.headers["Content-Security-Policy"] == PAGE_CSP
    assert "script-src" not in PAGE_CSP and "default-src 'none'" in PAGE_CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert resp.headers["X-Frame-Options"] == "DENY"
    # Pages that may show an address or carry a token stay out of caches; the archive is public.
    expected = "public, max-age=300" if path == "/archive/" else "no-store"
    assert resp.headers["Cache-Control"] == expected


def test_pages_carry_the_configured_language(client):
    assert '<html lang="en-GB">' in client.get("/subscribe").get_data(as_text=True)


def test_session_cookie_flags(client):
    cookie = client.get("/subscribe").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_behind_https(tmp_path, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    app = create_app(make_config(tmp_path, base_url="https://news.example.org"))
    assert "Secure" in app.test_client().get("/subscribe").headers["Set-Cookie"]


# -- CSRF -----------------------------------------------------------------------------------

def _signup(client, **data):
    form = {"email": "csrf@example.org", "name": "", "website": ""}
    form.update(data)
    return client.post("/subscribe", data=form)


def test_form_without_any_session_is_refused(client, config):
    resp = _signup(client, csrf_token="x" * 43)
    assert resp.status_code == 400
    assert "expired" in resp.get_data(as_text=True)
    assert status_of(config, "csrf@example.org") is None


def test_wrong_csrf_token_is_refused(client, config):
    client.get("/subscribe")
    assert _signup(client, csrf_token="y" * 43).status_code == 400
    assert _signup(client).status_code == 400
    assert status_of(config, "csrf@example.org") is None


def test_csrf_token_of_another_session_is_refused(config):
    app = create_app(config)
    mine, theirs = app.test_client(), app.test_client()
    their_token = csrf_from(theirs.get("/subscribe").get_data(as_text=True))
    mine.get("/subscribe")
    assert _signup(mine, csrf_token=their_token).status_code == 400
    assert status_of(config, "csrf@example.org") is None


def test_cross_site_origin_is_refused_even_with_the_token(client, config):
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post("/subscribe", data={"email": "csrf@example.org", "csrf_token": token},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 400
    assert status_of(config, "csrf@example.org") is None


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site"])
def test_cross_site_fetch_metadata_is_refused_even_with_the_token(client, config, fetch_site):
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post("/subscribe", data={"email": "csrf@example.org", "csrf_token": token},
                       headers={"Sec-Fetch-Site": fetch_site, "Origin": ORIGIN})
    assert resp.status_code == 400
    assert status_of(config, "csrf@example.org") is None


def test_valid_csrf_token_and_origin_pass(client, config):
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post("/subscribe", data={"email": "csrf@example.org", "csrf_token": token},
                       headers={"Origin": ORIGIN})
    assert resp.status_code == 200
    settle(client.application)
    assert status_of(config, "csrf@example.org") == "unconfirmed"


def test_session_key_follows_the_signing_key(config, monkeypatch):
    first = create_app(config)
    client = first.test_client()
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "a-completely-different-signing-key")
    second = create_app(config)
    assert second.secret_key != first.secret_key
    # The cookie signed under the old key means nothing to the new app.
    other = second.test_client()
    other.set_cookie("newsletter_session", client.get_cookie("newsletter_session").value)
    assert _signup(other, csrf_token=token).status_code == 400


def test_confirm_post_needs_csrf(client, config):
    store(config).add("c@example.org", status="unconfirmed")
    token = confirm_token(config, "c@example.org")
    client.get(f"/confirm/{token}")
    assert client.post(f"/confirm/{token}", data={}).status_code == 400
    assert status_of(config, "c@example.org") == "unconfirmed"


# -- errors ---------------------------------------------------------------------------------

def test_not_found_is_a_plain_page(client):
    resp = client.get("/wp-admin/setup.php")
    assert resp.status_code == 404
    html = resp.get_data(as_text=True)
    assert "Page not found" in html and '<html lang="en-GB">' in html


def test_wrong_method_is_405_not_a_csrf_error(client):
    resp = client.put("/subscribe", data={})
    assert resp.status_code == 405
    assert "POST" in resp.headers["Allow"]


def test_oversized_body_is_refused(client, config):
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post("/subscribe", data={"csrf_token": token, "email": "big@example.org",
                                           "name": "x" * 100_000})
    assert resp.status_code == 413
    assert status_of(config, "big@example.org") is None


def test_internal_error_shows_no_trace_and_is_logged(client, config):
    store(config).add("r@example.org", status="active")
    token = unsubscribe_token(config, "r@example.org")
    with get_engine(config).begin() as conn:       # a real failure: the table is gone
        conn.execute(text("DROP TABLE deliveries"))
        conn.execute(text("DROP TABLE subscribers"))
    with captured_logs() as records:
        resp = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 500
    html = resp.get_data(as_text=True)
    assert "Traceback" not in html and "sqlite" not in html.lower() and "subscribers" not in html
    assert "Something went wrong" in html
    assert any(r.exc_info and r.levelno == logging.ERROR for r in records), "the exception was not logged"


# -- every input is validated: random input never breaks the app -----------------------------

_texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=_texts, name=_texts, honeypot=st.sampled_from(["", "http://spam.example"]))
def test_random_sign_up_input_never_fails_the_server(client, email, name, honeypot):
    token = csrf_from(client.get("/subscribe").get_data(as_text=True))
    resp = client.post("/subscribe", data={"csrf_token": token, "email": email, "name": name,
                                           "website": honeypot})
    assert resp.status_code in (200, 400, 429)
    assert "Traceback" not in resp.get_data(as_text=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#%",
                                            exclude_categories=["Cs", "Cc"]), min_size=1, max_size=200))
def test_random_tokens_are_refused_cleanly(client, token):
    for path in (f"/u/{token}", f"/confirm/{token}"):
        assert client.get(path).status_code in (400, 404)
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code in (400, 404)


# -- rate limiter and colours (pure) -----------------------------------------------------------

def test_rate_limiter_window_slides():
    now = [1000.0]
    limiter = RateLimiter(3, window=3600, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit("b") is True                # keys are independent
    now[0] += 3599
    assert limiter.hit("a") is False
    now[0] += 2
    assert limiter.hit("a") is True            # all three old hits left the window
    assert limiter.remaining("a") == 2


def test_rate_limiter_memory_is_bounded():
    now = [0.0]
    limiter = RateLimiter(1, window=60, max_keys=100, clock=lambda: now[0])
    for i in range(1000):
        assert limiter.hit(f"k{i}")
        now[0] += 0.01
    assert len(limiter._hits) <= 100


def test_background_jobs_run_in_order_and_log_failures():
    jobs, done = BackgroundJobs(), []

    def fail() -> None:
        raise RuntimeError("boom")

    with captured_logs() as records:
        jobs.submit(done.append, 1)
        jobs.submit(fail)
        jobs.submit(done.append, 2)
        assert jobs.wait_idle(timeout=30)
    jobs.shutdown()
    assert done == [1, 2]
    assert any("boom" in str(r.exc_info[1]) for r in records if r.exc_info)
    with pytest.raises(RuntimeError):
        jobs.submit(done.append, 3)


def test_zero_limit_refuses_everything():
    assert RateLimiter(0).hit("a") is False


@pytest.mark.parametrize("accent", ["#1a56db", "#ffff00", "#00ff00", "#777777", "#000000", "#ffffff",
                                    "#f0f", "not a colour"])
def test_theme_text_is_readable_on_any_accent(accent):
    theme = make_theme(accent)
    assert contrast(theme.accent, theme.on_accent) >= 4.5
    assert contrast(theme.link, "#ffffff") >= 4.5
