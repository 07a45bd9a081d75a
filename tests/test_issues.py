"""Issue files: created, appended to without touching the editor's edits, loaded strictly."""

from pathlib import Path

import pytest

from newsletter import issues
from newsletter.errors import IssueError
from newsletter.models import Item


def test_append_keeps_editor_edits_and_comments(tmp_path: Path):
    issues.create_issue(tmp_path, "w1", "Week one")
    issues.append_items(tmp_path, "w1", [Item(url="https://a.example/1", title="A", summary="One. Two.")])
    path = tmp_path / "w1.toml"
    edited = path.read_text().replace('title = "A"', 'title = "A, retitled"  # the editor\'s choice')
    edited = edited.replace('title = "Week one"', '# my note\ntitle = "Week one"')
    path.write_text(edited)

    issues.append_items(tmp_path, "w1", [Item(url="https://b.example/2", title="B", summary="Three.",
                                              section="Science")])

    text = path.read_text()
    assert "# my note" in text and "# the editor's choice" in text
    issue = issues.load_issue(tmp_path, "w1")
    assert [i.title for i in issue.items] == ["A, retitled", "B"]
    assert issue.items[1].section == "Science"
    assert issue.sections() == [("", [issue.items[0]]), ("Science", [issue.items[1]])]


def test_create_refuses_existing_and_bad_ids(tmp_path: Path):
    issues.create_issue(tmp_path, "w1")
    with pytest.raises(IssueError, match="already exists"):
        issues.create_issue(tmp_path, "w1")
    for bad in ("../x", "", "a/b", ".hidden"):
        with pytest.raises(IssueError, match="invalid issue id"):
            issues.create_issue(tmp_path, bad)


def test_invalid_toml_names_file_and_line_and_loses_nothing(tmp_path: Path):
    path = tmp_path / "w1.toml"
    broken = 'id = "w1"\ntitle = "T"\n[[items]]\nurl = "https://a.example"\ntitle = = "x"\n'
    path.write_text(broken)
    with pytest.raises(IssueError, match=r"w1\.toml: invalid TOML.*line 5"):
        issues.load_issue(tmp_path, "w1")
    with pytest.raises(IssueError):
        issues.append_items(tmp_path, "w1", [Item(url="https://b.example", title="B")])
    assert path.read_text() == broken


def test_unknown_item_key_is_named(tmp_path: Path):
    (tmp_path / "w1.toml").write_text('id = "w1"\n[[items]]\nurl = "https://a.example"\nsumary = "x"\n')
    with pytest.raises(IssueError, match="unknown key 'sumary'"):
        issues.load_issue(tmp_path, "w1")


def test_a_bad_item_is_counted_from_1_and_named_by_its_title(tmp_path: Path):
    # As `build` and `issue show` count them: the second item is "item 2", not items[1].
    (tmp_path / "w1.toml").write_text('id = "w1"\n[[items]]\ntitle = "First"\n'
                                      '[[items]]\ntitle = "Second"\nsumary = "x"\n')
    with pytest.raises(IssueError, match=r"w1\.toml: item 2 'Second': unknown key 'sumary'"):
        issues.load_issue(tmp_path, "w1")
    (tmp_path / "w1.toml").write_text('id = "w1"\n[[items]]\ntitle = "First"\nsummary = 3\n')
    with pytest.raises(IssueError, match=r"item 1 'First': summary must be a string"):
        issues.load_issue(tmp_path, "w1")


def test_missing_issue_says_how_to_create_it(tmp_path: Path):
    with pytest.raises(IssueError, match="newsletter issue new w9"):
        issues.load_issue(tmp_path, "w9")


def test_note_and_outro_are_markdown_fields_the_editor_adds_by_hand(tmp_path: Path):
    issues.create_issue(tmp_path, "w1", "Week one", intro="**Hello**")
    issues.append_items(tmp_path, "w1", [Item(url="https://a.example/1", title="A", summary="One.")])
    path = tmp_path / "w1.toml"
    text = path.read_text()
    assert 'outro = ""' in text and "\nnote = " not in text   # an empty note is not written
    text = text.replace('outro = ""', 'outro = """\nThanks, **{{ subscriber.name or \'reader\' }}**.\n"""')
    text = text.replace('summary = """', 'note = "- my *own* take"\nsummary = """')
    path.write_text(text)
    issues.append_items(tmp_path, "w1", [Item(url="https://b.example/2", title="B", summary="Two.")])

    issue = issues.load_issue(tmp_path, "w1")
    assert issue.intro == "**Hello**"
    assert issue.outro == "Thanks, **{{ subscriber.name or 'reader' }}**."
    assert [i.note for i in issue.items] == ["- my *own* take", ""]
    assert "- my *own* take" in path.read_text()            # append left the editor's note alone


def test_an_item_note_written_by_append_is_kept(tmp_path: Path):
    issues.create_issue(tmp_path, "w1")
    issues.append_items(tmp_path, "w1", [Item(url="https://a.example/1", title="A", note="Line 1\nLine 2")])
    assert issues.load_issue(tmp_path, "w1").items[0].note == "Line 1\nLine 2"


def test_an_issue_key_under_an_item_says_where_it_belongs(tmp_path: Path):
    issues.create_issue(tmp_path, "w1")
    issues.append_items(tmp_path, "w1", [Item(url="https://a.example/1", title="A")])
    path = tmp_path / "w1.toml"
    path.write_text(path.read_text() + 'outro = "Bye"\n')   # after [[items]]: part of the last item
    with pytest.raises(IssueError, match=r"item 1 'A': unknown key 'outro'.*move it above the first"):
        issues.load_issue(tmp_path, "w1")
