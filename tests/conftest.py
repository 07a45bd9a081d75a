"""Shared pytest setup: keep tests off the user's config and network."""

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Run every test in its own folder with no inherited NEWSLETTER_* settings."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_") and key != "NEWSLETTER_TEST_POSTGRES_URL":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
