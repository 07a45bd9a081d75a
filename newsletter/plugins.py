"""The one plugin loader: summarisers and backends are found the same way and built the same way.

A plugin is named either by its entry-point name in its group (`newsletter.summarizers`,
`newsletter.backends`: how a package registers one, see pyproject.toml) or as "pkg.module:Class".
The class must subclass the group's base class. Constructor contract, for every group: the class
is called with one argument, the settings of its layer (a summariser gets its `[summarize]`
section, a backend the whole Config since it reads several sections), and raises ConfigError when
those settings cannot work.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TypeVar

from .errors import ConfigError

T = TypeVar("T")

SUMMARIZERS = "newsletter.summarizers"
BACKENDS = "newsletter.backends"


def load_class(group: str, name: str, base: type[T], *, key: str, kind: str) -> type[T]:
    """Return the subclass of base that name refers to in the entry-point group.

    key is the config key that named it (for messages), kind a word for the plugin ("backend").
    Raises ConfigError when the name is unknown, cannot be imported, or is not a subclass of base.
    """
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as err:
            raise ConfigError(f"{key}: cannot load {name!r}: {err}") from err
    else:
        found = [ep for ep in entry_points(group=group) if ep.name == name]
        if not found:
            known = ", ".join(sorted({ep.name for ep in entry_points(group=group)})) or "none"
            raise ConfigError(f"{key}: unknown {kind} {name!r} (known: {known})")
        try:
            cls = found[0].load()
        except Exception as err:  # importing a plugin runs its code: any failure is a config problem
            raise ConfigError(f"{key}: cannot load {name!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{key}: {name!r} is not a {base.__name__} subclass, so not a newsletter "
                          f"{base.__name__}")
    return cls


def create(cls: type[T], settings: object, *, key: str, name: str) -> T:
    """Return cls(settings); a plugin's own failure other than ConfigError becomes a ConfigError."""
    try:
        return cls(settings)  # type: ignore[call-arg]
    except ConfigError:
        raise
    except Exception as err:  # a third-party plugin may fail in any way: report it as config
        raise ConfigError(f"{key}: cannot start {name!r}: {err}") from err
