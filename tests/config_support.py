"""The one config builder of the tests: a test newsletter's settings, merged with what a test asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from newsletter.config import Config, config_from_dict, load_config

BASE_URL = "http://newsletter.test"
NEWSLETTER = {"name": "Test Weekly", "sender": "Test Weekly <news@example.org>", "base_url": BASE_URL}


def build_config(root: Path, *, write: bool = False, **sections: Any) -> Config:
    """Return a Config rooted at root: the test newsletter, SQLite under root/state, the file backend
    and a signing key generated in state/ (no secret in the environment), with each given section
    merged over those defaults (a dict is merged key by key, anything else replaces).

    With write, the settings are written to root/config.toml and loaded from there, as a user's
    project is (relative paths are then relative to root).
    """
    data: dict[str, Any] = {
        "newsletter": dict(NEWSLETTER),
        "database": {"url": "sqlite:///state/newsletter.db" if write
                     else f"sqlite:///{root / 'state' / 'newsletter.db'}"},
        "signing": {"secret_env": ""},
        "delivery": {"backend": "file"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    if not write:
        return config_from_dict(data, root)
    path = root / "config.toml"
    path.write_text(tomlkit.dumps(data), encoding="utf-8")
    return load_config(path)


def smtp_delivery(port: int, **more: Any) -> dict[str, Any]:
    """Return delivery settings that send over SMTP to 127.0.0.1:port, fast retries."""
    return {"backend": "smtp", "smtp": {"host": "127.0.0.1", "port": port, "timeout": 10},
            "backoff_seconds": 0.01, **more}
