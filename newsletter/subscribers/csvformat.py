"""How a subscriber CSV file is written: its text encoding and its delimiter, as spreadsheets save
them (Excel: UTF-8 with or without a BOM, "Unicode text" = UTF-16, or the Windows code page of
its locale, with commas, semicolons or tabs); raises SubscriberError."""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from ..errors import SubscriberError

EMAIL_HEADERS = {"email", "e-mail", "email address", "email_address", "mail"}
SAMPLE_BYTES = 2_000_000        # enough to tell a code page, small enough to read at once
DELIMITERS = (",", ";", "\t", "|")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# The code pages Excel saves "CSV" in, per Windows locale; Western European first.
_WINDOWS_CODE_PAGES = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257"]
_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16", "utf-16-le": "UTF-16LE",
          "utf-16-be": "UTF-16BE", "utf-32": "UTF-32"}
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Short name lists hold too few accented letters for a language model to tell Western from
# Central European code pages apart; windows-1252 wins unless it reads clearly worse.
_CP1252_MARGIN = 0.1


@dataclass(frozen=True)
class CSVFormat:
    """A CSV file's encoding (a Python codec) and delimiter, and whether the encoding was a guess."""

    encoding: str
    delimiter: str
    guessed: bool = False       # a legacy code page chosen by detection (no BOM, not UTF-8/16)

    @property
    def encoding_name(self) -> str:
        """Return the encoding as people know it ("UTF-8 with BOM", "Windows-1252")."""
        if self.encoding in _NAMES:
            return _NAMES[self.encoding]
        if self.encoding.startswith("cp12"):
            return f"Windows-{self.encoding[2:]}"
        return self.encoding

    @property
    def delimiter_name(self) -> str:
        """Return the delimiter in words ("semicolon")."""
        return _DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def detect_format(path: Path, encoding: str | None = None) -> CSVFormat:
    """Return the encoding (unless given) and delimiter of the CSV file at path.

    Raises SubscriberError naming the file when it cannot be read, is empty, or encoding is not
    a known codec.
    """
    where = str(path)
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError as err:
            raise SubscriberError(f"--encoding {encoding!r}: unknown encoding (e.g. utf-8, cp1252, "
                                  "utf-16)") from err
    try:
        with open(path, "rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
            guessed = False
            if not encoding:
                encoding, guessed = _encoding(sample, handle)
    except OSError as err:
        raise SubscriberError(f"{where}: cannot read: {err.strerror or err}") from err
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise SubscriberError(f"{where}: empty file (expected a header line with an 'email' column)")
    return CSVFormat(encoding, _delimiter(text), guessed)


def _encoding(sample: bytes, rest) -> tuple[str, bool]:  # noqa: ANN001 - a binary file positioned after sample
    """Return (codec, guessed) for a file starting with sample; reads the rest to check UTF-8."""
    for bom, codec in _BOMS:
        if sample.startswith(bom):
            return codec, False
    head = sample[:4096]
    if head and head.count(0) * 4 >= len(head):
        # UTF-16 without a BOM: ASCII text has a NUL in every other byte.
        return ("utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"), False
    # UTF-8 when it decodes, or when its valid non-ASCII characters outnumber the bytes that are
    # not UTF-8 (a stray byte then spoils its own row, not every accented name in the file).
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    good = bad = 0
    chunk = sample
    while chunk:
        text = decoder.decode(chunk)
        bad += text.count("\ufffd")
        good += sum(1 for ch in text if ch > "\x7f") - text.count("\ufffd")
        chunk = rest.read(1 << 20)
    bad += decoder.decode(b"", final=True).count("\ufffd")
    if bad == 0 or good > bad:
        return "utf-8", False
    matches = charset_normalizer.from_bytes(sample, cp_isolation=_WINDOWS_CODE_PAGES)
    best = matches.best()
    western = next((m for m in matches if m.encoding == "cp1252"), None)
    if best is None or (western is not None and western.chaos <= best.chaos + _CP1252_MARGIN):
        return "cp1252", True
    return best.encoding, True


def _delimiter(text: str) -> str:
    """Return the delimiter of the CSV text: the one that gives its header an email column.

    csv.Sniffer looks at the first lines; when it cannot tell (one column) or its choice leaves
    no email column, the delimiters are tried in turn on the header line.
    """
    lines = text.splitlines()
    head = "\n".join(lines[:20])
    try:
        sniffed = csv.Sniffer().sniff(head, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = ""
    header = lines[0] if lines else ""
    for candidate in ([sniffed] if sniffed else []) + list(DELIMITERS):
        try:
            cells = next(csv.reader([header], delimiter=candidate))
        except (csv.Error, StopIteration):
            continue
        if any(c.strip().lower() in EMAIL_HEADERS for c in cells) and (len(cells) > 1 or candidate == ","):
            return candidate
    return sniffed or ","
