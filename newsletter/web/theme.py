"""Colours for the pages, derived from the newsletter's accent colour so that text stays readable."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
DEFAULT_ACCENT = "#1a56db"
PAGE_BG, CARD_BG, TEXT = "#f4f4f5", "#ffffff", "#1f2328"
# WCAG 2.x AA asks for 4.5:1 for normal text.
MIN_CONTRAST = 4.5


@dataclass(frozen=True)
class Theme:
    """The colours the stylesheet uses: accent (buttons), on_accent (their text), link."""

    accent: str
    on_accent: str
    link: str


def parse_hex(color: str) -> tuple[int, int, int]:
    """Return (r, g, b) of a #rgb or #rrggbb colour; raises ValueError on anything else."""
    m = _HEX.match(color.strip())
    if not m:
        raise ValueError(f"not a hex colour: {color!r}")
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: tuple[int, int, int]) -> str:
    """Return the #rrggbb spelling of rgb."""
    return "#" + "".join(f"{max(0, min(255, round(c))):02x}" for c in rgb)


def luminance(rgb: tuple[int, int, int]) -> float:
    """Return the WCAG relative luminance of rgb (0 = black, 1 = white)."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """Return the WCAG contrast ratio between two hex colours (1 to 21)."""
    la, lb = luminance(parse_hex(a)), luminance(parse_hex(b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def _darken_until_readable(color: str, background: str) -> str:
    """Return color mixed with black just enough to reach MIN_CONTRAST on background."""
    r, g, b = parse_hex(color)
    for step in range(0, 101, 5):
        k = 1 - step / 100
        candidate = to_hex((r * k, g * k, b * k))
        if contrast(candidate, background) >= MIN_CONTRAST:
            return candidate
    return "#000000"


def make_theme(accent: str) -> Theme:
    """Return the page colours for this accent (the default accent when it is not a hex colour)."""
    try:
        accent = to_hex(parse_hex(accent))
    except ValueError:
        log.warning("newsletter.accent_color %r is not a #rrggbb colour; using %s", accent, DEFAULT_ACCENT)
        accent = DEFAULT_ACCENT
    # White text when it passes AA, else the body's near-black, else black: against any colour,
    # white or black reaches at least 4.58:1, so one of them always passes.
    on_accent = next((c for c in ("#ffffff", TEXT) if contrast(accent, c) >= MIN_CONTRAST), "#000000")
    return Theme(accent=accent, on_accent=on_accent, link=_darken_until_readable(accent, CARD_BG))
