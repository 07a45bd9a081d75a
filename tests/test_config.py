"""Config: every key is documented in the sample config.toml, unknown keys and bad types are named."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

import pytest

from newsletter.config import Config, load_config
from newsletter.errors import ConfigError

SAMPLE = Path(__file__).resolve().parent.parent / "config.toml"


def _keys(cls: type, prefix: str = "") -> set[str]:
    hints = typing.get_type_hints(cls)
    out: set[str] = set()
    for f in dataclasses.fields(cls):
        if f.name in ("root", "path"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            out |= _keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.add(prefix + f.name)
    return out


def _documented(text: str) -> set[str]:
    """Keys written in the sample, commented-out examples included (`# feeds = [...]`)."""
    data = tomllib.loads(text)
    out: set[str] = set()

    def walk(table: dict, prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out.add(prefix + key)
    walk(data, "")
    return out


def test_sample_config_loads_and_documents_every_key():
    config = load_config(SAMPLE)
    assert config.root == SAMPLE.parent
    missing = _keys(Config) - _documented(SAMPLE.read_text())
    assert not missing, f"config.toml does not document: {sorted(missing)}"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "config.toml").write_text('[paths]\nstate = "var"\n')
    config = load_config(folder / "config.toml")
    assert config.paths.state == folder / "var"
    assert config.paths.issues == folder / "issues"
    assert config.database_url() == f"sqlite:///{folder / 'state' / 'newsletter.db'}"


@pytest.mark.parametrize("text, message", [
    ("[delivery]\nrate_per_secnd = 3\n", "unknown key 'delivery.rate_per_secnd'"),
    ("[nope]\n", "unknown key 'nope'"),
    ("[delivery]\nconcurrency = \"four\"\n", "'delivery.concurrency' must be an integer"),
    ("[web]\nenabled = 1\n", "'web.enabled' must be true or false"),
    ("[delivery\n", "invalid TOML"),
])
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, message: str):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        load_config(tmp_path / "config.toml")
    assert "\n" not in str(info.value) and "config.toml" in str(info.value)


def test_missing_config_file_says_how_to_make_one(tmp_path: Path):
    with pytest.raises(ConfigError, match="newsletter init"):
        load_config(tmp_path / "absent.toml")
