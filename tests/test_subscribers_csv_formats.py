"""Subscriber CSV files as spreadsheets save them: Excel's Windows-1252 with accented names, UTF-16
("Unicode text"), UTF-8 with a BOM, semicolons and tabs; the import says what it read."""

from __future__ import annotations

import codecs
import json

import pytest

from newsletter.errors import SubscriberError
from newsletter.subscribers.csvformat import detect_format

NAMES = [("zoe@example.org", "Zoë Müller"), ("jose@example.org", "José Álvarez"),
         ("francois@example.org", "François Déjà-Vu"), ("soren@example.org", "Søren Ørsted")]


def _csv(delimiter: str = ",", names=NAMES) -> str:
    return "\r\n".join([f"email{delimiter}name"] + [f"{a}{delimiter}{n}" for a, n in names]) + "\r\n"


def _names(project) -> dict[str, str]:
    listed = json.loads(project.run("subscribers", "list", "--json").stdout)
    return {s["email"]: s["name"] for s in listed}


@pytest.mark.parametrize("data, said", [
    (_csv(";").encode("cp1252"), "read as Windows-1252 (guessed; --encoding chooses another), semicolon-separated"),
    (codecs.BOM_UTF16_LE + _csv("\t").encode("utf-16-le"), "read as UTF-16 (detected), tab-separated"),
    (_csv("\t").encode("utf-16-le"), "read as UTF-16LE (detected), tab-separated"),
    (codecs.BOM_UTF8 + _csv(";").encode("utf-8"), "read as UTF-8 with BOM (detected), semicolon-separated"),
    (_csv(",").encode("utf-8"), "read as UTF-8 (detected), comma-separated"),
])
def test_every_row_and_accent_arrives_and_the_import_says_how_it_read_the_file(project, tmp_path, data, said):
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    result = project.run("subscribers", "import", str(path))
    assert f"{path}: {said}" in result.stdout
    assert "4 added" in result.stdout and "0 rows rejected" in result.stdout
    assert _names(project) == dict(NAMES)


def test_an_encoding_given_on_the_command_line_wins(project, tmp_path):
    path = tmp_path / "polish.csv"
    path.write_bytes(_csv(",", [("lukasz@example.pl", "Łukasz Wąsowski")]).encode("cp1250"))
    result = project.run("subscribers", "import", str(path), "--encoding", "cp1250")
    assert "read as Windows-1250 (given)" in result.stdout
    assert _names(project) == {"lukasz@example.pl": "Łukasz Wąsowski"}
    bad = project.run("subscribers", "import", str(path), "--encoding", "klingon", code=1)
    assert bad.output.startswith("error: --encoding 'klingon': unknown encoding")


def test_a_single_column_file_and_an_unreadable_one(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("email\nann@example.org\n", encoding="utf-8")
    assert (detect_format(one).encoding, detect_format(one).delimiter) == ("utf-8", ",")
    with pytest.raises(SubscriberError, match="cannot read"):
        detect_format(tmp_path / "missing.csv")
