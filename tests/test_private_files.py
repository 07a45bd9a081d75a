"""Subscriber data is its owner's alone: state/ 0700, the SQLite database with its -wal and -shm
files 0600, outbox folders 0700 and messages 0600, and the CLI's process umask 077."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from config_support import build_config
from newsletter.db import dispose_engines, engine_for_url
from newsletter.pipeline import send_issue
from newsletter.subscribers.store import SubscriberStore
from store_support import write_issue

SAMPLE = Path(__file__).resolve().parent.parent / "subscribers" / "sample.csv"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_folder_are_private(tmp_path):
    db = tmp_path / "state" / "newsletter.db"
    engine = engine_for_url(f"sqlite:///{db}")
    SubscriberStore(engine).add("ann@example.org")
    assert mode(tmp_path / "state") == 0o700
    for path in (db, db.with_name("newsletter.db-wal"), db.with_name("newsletter.db-shm")):
        assert path.exists() and mode(path) == 0o600, path
    dispose_engines()


def test_a_database_left_readable_by_an_earlier_release_is_made_private(tmp_path):
    db = tmp_path / "newsletter.db"
    SubscriberStore(engine_for_url(f"sqlite:///{db}")).add("ann@example.org")
    dispose_engines()
    for path in (db, db.with_name("newsletter.db-wal"), db.with_name("newsletter.db-shm")):
        if path.exists():
            path.chmod(0o644)
    engine_for_url(f"sqlite:///{db}")
    assert mode(db) == 0o600
    for side in ("newsletter.db-wal", "newsletter.db-shm"):
        if db.with_name(side).exists():
            assert mode(db.with_name(side)) == 0o600
    dispose_engines()


def test_the_outbox_is_private(tmp_path):
    config = build_config(tmp_path)
    SubscriberStore(engine_for_url(config.database_url())).add("ann@example.org", status="active")
    write_issue(config, "w1")
    assert send_issue(config, "w1").sent == 1
    outbox = Path(config.delivery.file.dir)
    assert mode(outbox) == 0o700 and mode(outbox / "w1") == 0o700
    (message,) = (outbox / "w1").iterdir()
    assert mode(message) == 0o600
    dispose_engines()


def test_the_command_line_writes_nothing_others_can_read(tmp_path):
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///state/newsletter.db"\n'
                                          '[signing]\nsecret_env = ""\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for args in (["subscribers", "import", str(SAMPLE)], ["subscribers", "export", "out.csv"]):
        done = subprocess.run([sys.executable, "-m", "newsletter", "--config", "config.toml", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    made = [p for p in tmp_path.rglob("*") if p.name != "config.toml"]
    assert (tmp_path / "out.csv") in made and (tmp_path / "state" / "newsletter.db") in made
    for path in made:
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"
