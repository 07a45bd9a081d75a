"""`newsletter demo`: the main job on the sample, delivered to a local folder and to nobody else,
even in a project whose backend and list are real."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mail_servers import SMTPTestServer
from newsletter.cli import cli
from newsletter.db import dispose_engines


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "demo-tests-secret-0123456789abcdef")
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result

    yield invoke
    dispose_engines()


def test_demo_in_a_real_project_mails_nobody_and_leaves_the_real_list_alone(tmp_path: Path, run):
    with SMTPTestServer() as server:
        run("init", str(tmp_path / "news"), "--name", "Field Notes", "--sender", "Field Notes <letters@fieldnotes.eu>",
            "--postal-address", "4 Quay Road, Bristol", "--base-url", "https://news.fieldnotes.eu")
        config_file = tmp_path / "news" / "config.toml"
        text = config_file.read_text(encoding="utf-8")
        text = text.replace('backend = "file"', 'backend = "smtp"', 1).replace("port = 25\n", f"port = {server.port}\n", 1)
        config_file.write_text(text, encoding="utf-8")
        config = ("--config", str(config_file))
        run(*config, "subscribers", "add", "reader@fieldnotes.eu", "--name", "A real reader")

        out = run(*config, "demo").stdout
        assert server.messages == []                                    # README: "no outside service"
        outbox = tmp_path / "news" / "state" / "outbox" / "sample"
        assert f"messages are in {outbox}" in out
        assert len(list(outbox.glob("*.eml"))) == 9                     # the sample list, nobody else
        assert not (outbox / "reader@fieldnotes.eu.eml").exists()
        listed = run(*config, "subscribers", "list").stdout.splitlines()
        assert [line.split("\t")[0] for line in listed] == ["reader@fieldnotes.eu"]

        again = run(*config, "demo").stdout
        assert "nothing to send" in again and server.messages == []
