"""Load config.toml into the settings (sections.py); returns Config, raises ConfigError naming file and key."""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .checks import check_value
from .sections import Config, QueueSection

ENV_CONFIG = "NEWSLETTER_CONFIG"
DEFAULT_CONFIG = "config.toml"


def secret(env_name: str, what: str) -> str:
    """Return the value of the environment variable env_name; raise ConfigError when it is unset."""
    if not env_name:
        raise ConfigError(f"{what}: no environment variable is named in config")
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"{what}: environment variable {env_name} is not set")
    return value


def config_path(given: str | os.PathLike[str] | None = None) -> Path:
    """Return the config file to use: the argument, else $NEWSLETTER_CONFIG, else ./config.toml."""
    return Path(given or os.environ.get(ENV_CONFIG) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None, *, must_exist: bool = True) -> Config:
    """Read and validate a config file; return Config (defaults when absent and not must_exist)."""
    cfg_path = config_path(path)
    if not cfg_path.exists():
        if must_exist:
            raise ConfigError(f"{cfg_path}: config file not found (create one with `newsletter init`)")
        data: dict[str, Any] = {}
    else:
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{cfg_path}: invalid TOML: {err}") from err
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{cfg_path}: cannot read: {err}") from err
    root = cfg_path.resolve().parent
    cfg = _build(Config, data, str(cfg_path), "", root)
    _check_queue(cfg.queue, cfg.database.url, str(cfg_path))
    return dataclasses.replace(cfg, root=root, path=cfg_path.resolve())


def config_from_dict(data: dict[str, Any], root: Path) -> Config:
    """Build a Config from an already-parsed mapping (tests, scaffolding); paths relative to root."""
    cfg = _build(Config, data, "<config>", "", root.resolve())
    _check_queue(cfg.queue, cfg.database.url, "<config>")
    return dataclasses.replace(cfg, root=root.resolve())


def is_postgres_url(url: str) -> bool:
    """Return True when a database URL names PostgreSQL (postgresql:// or postgresql+driver://)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def _check_queue(queue: QueueSection, url: str, where: str) -> None:
    """Check the [queue] table's values; raises ConfigError naming the key."""
    if queue.chunk_size < 1:
        raise ConfigError(f"{where}: 'queue.chunk_size' must be at least 1, got {queue.chunk_size}")
    if queue.concurrency < 1:
        raise ConfigError(f"{where}: 'queue.concurrency' must be at least 1, got {queue.concurrency}")
    if not queue.name.strip():
        raise ConfigError(f"{where}: 'queue.name' must not be empty")
    if queue.heartbeat_seconds <= 0 or queue.stalled_seconds < 2 * queue.heartbeat_seconds:
        raise ConfigError(f"{where}: 'queue.stalled_seconds' ({queue.stalled_seconds:g}) must be at least twice "
                          f"'queue.heartbeat_seconds' ({queue.heartbeat_seconds:g}), which must be positive")
    if queue.enabled and not is_postgres_url(url):
        # Procrastinate runs on PostgreSQL only (SKIP LOCKED, LISTEN/NOTIFY, advisory locks).
        raise ConfigError(f"{where}: 'queue.enabled' needs a PostgreSQL 'database.url' "
                          "(postgresql+psycopg://…); SQLite sends from one process: set enabled = false")


_HIDDEN = {"root", "path"}


def _build(cls: type, data: Any, where: str, prefix: str, root: Path) -> Any:
    """Instantiate dataclass cls from data, checking every key and value type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _HIDDEN}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{where}: unknown key '{prefix}{key}' (known here: {known})")
        kwargs[key] = _convert(hints[key], value, where, f"{prefix}{key}", root)
        check_value(fields[key], kwargs[key], where, f"{prefix}{key}")
    for name in fields.keys() - kwargs.keys():
        # Defaults are relative to the config file too: build nested tables and paths from them.
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = _build(hints[name], {}, where, f"{prefix}{name}.", root)
        elif hints[name] is Path:
            kwargs[name] = root / fields[name].default
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str, key: str, root: Path) -> Any:
    """Check value against the annotated type tp and convert it (paths resolved against root)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, key + ".", root)
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: '{key}' must be a non-empty path string")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (root / p)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be an array")
        return tuple(_convert(inner, v, where, f"{key}[{i}]", root) for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{key}' must be a number, got {value!r}")
        if not math.isfinite(value):
            # TOML spells inf and nan; no setting means either (nan even passes every range check).
            raise ConfigError(f"{where}: '{key}' must be a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
        return value
    return value
