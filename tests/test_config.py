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


@pytest.mark.parametrize("text, message", [
    ("[web]\nport = 70000\n", "'web.port' must be at most 65535, got 70000"),
    ("[delivery.http]\nmax_retries = -1\n", "'delivery.http.max_retries' must be at least 0, got -1"),
    ("[fetch]\nread_timeout = 0\n", "'fetch.read_timeout' must be greater than 0, got 0.0"),
    ("[fetch]\nconnect_timeout = -2.5\n", "'fetch.connect_timeout' must be greater than 0"),
    ("[delivery.smtp]\ntimeout = nan\n", "'delivery.smtp.timeout' must be a finite number"),
    ("[delivery]\nbackoff_seconds = inf\n", "'delivery.backoff_seconds' must be a finite number"),
    ("[delivery]\npause_failure_ratio = 1.5\n", "'delivery.pause_failure_ratio' must be at most 1"),
    ("[delivery]\nconcurrency = 0\n", "'delivery.concurrency' must be at least 1"),
    ("[delivery]\ndefault_list = \" news\"\n", "'delivery.default_list': list name ' news' starts or ends"),
    ("[schedule]\nmax_items = 0\n", "'schedule.max_items' must be at least 1"),
    ("[web]\nidle_timeout = 0\n", "'web.idle_timeout' must be at least 1"),
    ("[web]\ntrusted_hosts = [\"https://news.example.org/\"]\n", "'web.trusted_hosts': 'https://news.example.org/'"),
    ("[signing]\nlegacy_link_days = -1\n", "'signing.legacy_link_days' must be at least 0"),
])
def test_values_out_of_range_name_the_key(tmp_path: Path, text: str, message: str):
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_range_checks_are_per_field_metadata_any_section_can_use():
    from dataclasses import dataclass

    from newsletter.config.checks import bounded, positive
    from newsletter.config.load import _build

    @dataclass(frozen=True)
    class NewSection:
        workers: int = bounded(2, 1, 8)
        wait: float = positive(1.0)

    assert _build(NewSection, {"workers": 8}, "<t>", "new.", Path(".")).workers == 8
    with pytest.raises(ConfigError, match="'new.workers' must be at most 8"):
        _build(NewSection, {"workers": 9}, "<t>", "new.", Path("."))
    with pytest.raises(ConfigError, match="'new.wait' must be greater than 0"):
        _build(NewSection, {"wait": 0}, "<t>", "new.", Path("."))


def test_limits_at_their_edges_are_accepted(tmp_path: Path):
    (tmp_path / "config.toml").write_text("[web]\nport = 0\nproxy_hops = 20\n[delivery]\npause_failure_ratio = 1.0\n"
                                          "rate_per_second = 0\n[delivery.smtp]\nport = 65535\n")
    config = load_config(tmp_path / "config.toml")
    assert (config.web.port, config.delivery.smtp.port, config.web.proxy_hops) == (0, 65535, 20)
