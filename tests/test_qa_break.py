"""Hostile input found by breaking the tool on purpose: each is one clear line (never a traceback),
bounded in memory and time, and never hides the rest."""

from __future__ import annotations

import pytest

from config_support import build_config
from newsletter.errors import RenderError
from newsletter.models import Issue, Item
from newsletter.render.checks import check_rendered
from newsletter.render.issue import render_issue
from newsletter.render.merge import MergeFields
from newsletter.render.merge_eval import MergeEvaluator


def one_item_issue(**more) -> Issue:
    return Issue(id="w1", title="Week one",
                 items=(Item(url="https://example.org/a", title="A story", summary="It happened."),), **more)


@pytest.fixture
def config(tmp_path):
    return build_config(tmp_path, newsletter={"postal_address": "1 Road"})


@pytest.mark.parametrize("source", ["{{ 'ab' * 50000000 }}", "{{ [1] * 10**9 }}", "{{ 10**9 * 'x' }}",
                                    "{{ 2 ** 100000000 }}", "{{ 9 ** 99999999 }}"])
def test_an_operator_that_would_build_something_huge_fails_fast_with_one_line(source):
    fields = MergeFields("n1")
    fields.add(source, "intro")
    assert any("fails" in w for w in fields.warnings), fields.warnings
    with pytest.raises(RenderError, match="merge field .* failed for a@example.org: .*(too large|at most)"):
        MergeEvaluator(fields.snippets)({"email": "a@example.org"})


def test_small_products_and_powers_still_work():
    fields = MergeFields("n1")
    fields.add("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 3 * 4 }} {{ 2.5 * 2 }}", "intro")
    values = MergeEvaluator(fields.snippets)({"email": "a@example.org"})
    assert list(values.values()) == ["1024 ababab 12 5.0"]


def test_a_loop_whose_output_is_too_long_fails_that_subscriber_with_one_line():
    fields = MergeFields("n1")
    fields.add("{% for a in range(99999) %}xxxxxxxxxx{% endfor %}", "intro")
    with pytest.raises(RenderError, match="gives 999990 characters .* at most 100000"):
        MergeEvaluator(fields.snippets)({"email": "a@example.org"})


def test_nested_loops_in_the_issue_text_are_shown_as_written_not_run(config):
    issue = one_item_issue(intro="{% for a in range(99999) %}{% for b in range(99999) %}x"
                                 "{% endfor %}{% endfor %}")
    warnings = check_rendered(render_issue(issue, config), issue)     # returns at once
    assert any("may not nest one loop inside another" in w for w in warnings), warnings


def test_an_integer_too_long_to_compile_is_a_warning_not_a_traceback(config):
    issue = one_item_issue(intro="{{ " + "1" * 5000 + " }} and {{ 2**100000000 }}")
    rendered = render_issue(issue, config)
    warnings = check_rendered(rendered, issue)
    assert any(w.startswith("intro: not a valid merge field") for w in warnings), warnings


def test_build_of_a_huge_power_is_one_error_line(project):
    project.run("issue", "new", "w1")
    path = project.issue_file("w1")
    text = path.read_text(encoding="utf-8").replace('intro = ""', 'intro = "{{ 2**100000000 }}"', 1)
    text += '\n[[items]]\nurl = "https://example.org/a"\ntitle = "A"\nsummary = "It happened."\n'
    path.write_text(text, encoding="utf-8")
    result = project.run("build", "w1", code=None)
    assert "Traceback" not in result.stderr, result.stderr
    assert "too large for a merge field" in result.stderr


def test_issue_list_names_a_broken_issue_file_and_still_lists_the_others(project):
    project.run("issue", "new", "w1", "--title", "Good one")
    project.issue_file("w2").write_text('id = "w2"\ntitle = \n', encoding="utf-8")
    result = project.run("issue", "list", code=1)
    assert "w1\t" in result.stdout and "Good one" in result.stdout
    assert result.stderr.count("\n") == 1 and "w2.toml: invalid TOML" in result.stderr, result.stderr


@pytest.mark.parametrize("text, message", [
    ("[fetch]\nread_timeout = 1e308\n", "'fetch.read_timeout' must be at most 86400"),
    ("[delivery.smtp]\ntimeout = 1e20\n", "'delivery.smtp.timeout' must be at most 86400"),
    ("[delivery]\nbackoff_seconds = 1e308\n", "'delivery.backoff_seconds' must be at most 3600"),
    ("[bounces]\nsoft_bounce_limit = 0\n", "'bounces.soft_bounce_limit' must be at least 1"),
    ("[bounces]\ncomplaint_pause_ratio = -1\n", "'bounces.complaint_pause_ratio' must be at least 0"),
    ("[bounces]\nimap_port = 70000\n", "'bounces.imap_port' must be at most 65535"),
    ("[webhooks]\nmax_age_seconds = -1\n", "'webhooks.max_age_seconds' must be at least 1"),
])
def test_more_config_numbers_are_range_checked(tmp_path, text, message):
    from newsletter.config import load_config
    from newsletter.errors import ConfigError

    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.toml")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_huge_read_timeout_is_refused_before_it_reaches_a_socket(project):
    project.run("issue", "new", "w1")
    text = project.config_file.read_text(encoding="utf-8")
    project.config_file.write_text(text.replace("read_timeout = 20.0", "read_timeout = 1e308", 1),
                                   encoding="utf-8")
    result = project.run("add", "http://127.0.0.1:9/x", "--issue", "w1", code=1)
    assert "'fetch.read_timeout' must be at most 86400" in result.stderr


@pytest.mark.parametrize("subject", ["{title.__class__}", "{title[0]}", "{title:>99999999}", "{title!r}",
                                     "{}"])
def test_subject_placeholders_are_the_three_names_only(tmp_path, subject):
    from newsletter.errors import ConfigError

    config = build_config(tmp_path, newsletter={"postal_address": "1 Road", "subject": subject})
    with pytest.raises(ConfigError, match="bad placeholder"):
        render_issue(one_item_issue(), config)


def test_a_state_folder_that_cannot_be_made_is_one_line(project):
    project.run("issue", "new", "w1")
    text = project.config_file.read_text(encoding="utf-8")
    project.config_file.write_text(text.replace('state = "state"', 'state = "/dev/null/state"', 1),
                                   encoding="utf-8")
    path = project.issue_file("w1")
    path.write_text(path.read_text(encoding="utf-8") + '\n[[items]]\nurl = "https://example.org/a"\n'
                    'title = "A"\nsummary = "It happened."\n', encoding="utf-8")
    result = project.run("build", "w1", code=1)
    assert result.stderr.startswith("error: /dev/null/state") and result.stderr.count("\n") == 1, result.stderr


def test_terminal_escapes_in_a_csv_header_are_shown_escaped(project, tmp_path):
    hostile = tmp_path / "esc.csv"
    hostile.write_bytes(b"name,\x1b]0;pwned\x07\x1b[2J,city\nx,y,z\n")
    result = project.run("subscribers", "import", str(hostile), code=1)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in result.stderr and result.stderr.count("\n") == 1


def test_export_to_dash_writes_standard_output_not_a_file_named_dash(project, tmp_path, monkeypatch):
    project.run("subscribers", "add", "ada@example.org", "--name", "Ada")
    monkeypatch.chdir(tmp_path)
    result = project.run("subscribers", "export", "-")
    assert result.stdout.splitlines()[:2] == ["email,name,status", "ada@example.org,Ada,active"]
    assert not (tmp_path / "-").exists()


def test_a_reader_that_goes_away_is_no_error(project):
    import os
    import subprocess
    import sys

    for i in range(3000):
        if i % 1000 == 0:
            rows = "\n".join(f"r{j}@example.org,R {j}" for j in range(i, i + 1000))
            csv = project.root / f"s{i}.csv"
            csv.write_text("email,name\n" + rows + "\n", encoding="utf-8")
            project.run("subscribers", "import", str(csv))
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "--config", str(project.config_file),
                             "subscribers", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    proc.stdout.readline()
    proc.stdout.close()                  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == "", err
