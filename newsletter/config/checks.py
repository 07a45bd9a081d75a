"""Checks on config values beyond their type: a range (bounded, positive) or a function (checked),
kept as dataclass field metadata that config._build applies to every value a file gives.

Any section opts in where it declares a key, e.g. `workers: int = bounded(4, 1, 64)`; the error
names the file and the key ("'web.port' must be at most 65535, got 70000").
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, NewsletterError
from ..inputs import check_list_name


@dataclass(frozen=True)
class Bound:
    """The allowed range of a number: [lo, hi], with lo excluded when above is set."""

    lo: float | None = None
    hi: float | None = None
    above: bool = False

    def problem(self, value: float) -> str | None:
        """Return what is wrong with value (e.g. "must be greater than 0"), or None."""
        if self.lo is not None and (value <= self.lo if self.above else value < self.lo):
            return f"must be {'greater than' if self.above else 'at least'} {self.lo:g}"
        if self.hi is not None and value > self.hi:
            return f"must be at most {self.hi:g}"
        return None


def bounded(default: Any, lo: float | None = None, hi: float | None = None, *, above: bool = False) -> Any:
    """Return a dataclass field with default whose configured value must lie in [lo, hi] (lo
    excluded with above); load_config raises ConfigError naming the key otherwise."""
    return field(default=default, metadata={"bound": Bound(lo, hi, above)})


def checked(default: Any, check: Any) -> Any:
    """Return a dataclass field with default whose configured value check(value) must accept
    (check returns the value or raises ValueError / NewsletterError saying why)."""
    return field(default=default, metadata={"check": check})


def optional_duration(value: str) -> str:
    """Return value when it is "" or a duration such as "30m", "6h" or "1d"; raise ValueError otherwise."""
    from ..timeutil import parse_duration

    if value.strip():
        parse_duration(value.strip())
    return value


MAX_SECONDS = 86_400.0   # a day: longer timeouts and delays overflow the platform's time_t in sleep()


def positive(default: float, hi: float | None = MAX_SECONDS) -> Any:
    """Return a field for a duration that must be greater than zero (and at most a day)."""
    return bounded(default, 0, hi, above=True)


# A DNS name (IDNs in their xn-- form, as browsers send them), an IPv4 address or a bracketed IPv6 one.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


def host_names(hosts: tuple[str, ...]) -> tuple[str, ...]:
    """Return hosts when each is a host name or IP address (".example.org" = it and its subdomains)."""
    for host in hosts:
        name = host[1:] if host.startswith(".") else host
        if not _HOST.fullmatch(name):
            raise ValueError(f"{host!r} is not a host name (no scheme, port or path: news.example.org)")
    return hosts


def optional_list_name(value: str) -> str:
    """Return value when it is empty (meaning the default list) or a valid list name."""
    return value if value == "" else check_list_name(value)


def check_value(f: dataclasses.Field, value: Any, where: str, key: str) -> None:
    """Apply the field's range (bounded) or check (checked); raises ConfigError naming the key."""
    bound = f.metadata.get("bound")
    if bound is not None:
        problem = bound.problem(value)
        if problem:
            raise ConfigError(f"{where}: '{key}' {problem}, got {value!r}")
    check = f.metadata.get("check")
    if check is not None:
        try:
            check(value)
        except (ValueError, NewsletterError) as err:
            raise ConfigError(f"{where}: '{key}': {err}") from err
