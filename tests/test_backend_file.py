"""File backend and the backend loader: .eml files in the outbox, plugins by name or by path."""

from __future__ import annotations

import email
import email.policy

import pytest

from newsletter.backends.base import Backend, backend_class, make_backend
from newsletter.backends.file import FileBackend, safe_name
from newsletter.backends.http import HTTPBackend
from newsletter.backends.smtp import SMTPBackend
from newsletter.errors import ConfigError
from newsletter.models import Delivery, Subscriber
from newsletter.personalize.message import MessageFactory

from personalize_support import SECRET, make_config, rendered_issue


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)


def test_each_message_is_written_as_an_eml_file_under_the_issue(tmp_path):
    config = make_config(tmp_path, delivery={"backend": "file", "file": {"dir": "outbox"}})
    factory = MessageFactory(rendered_issue("2026-w48"), config, list_name="default")
    recipients = [factory.recipient(Subscriber(email=e, name="R")) for e in
                  ("ann@example.com", "Bob@Example.com", "odd/../name@example.com")]
    with make_backend(config) as backend:
        assert isinstance(backend, FileBackend)
        results = backend.send(factory, recipients)
    assert all(isinstance(r, Delivery) for r in results)
    files = sorted((tmp_path / "outbox" / "2026-w48").iterdir())
    assert len(files) == 3 and all(f.suffix == ".eml" for f in files)
    assert (tmp_path / "outbox" / "2026-w48" / "ann@example.com.eml").exists()
    assert (tmp_path / "outbox" / "2026-w48" / "bob@example.com.eml").exists()
    for result in results:
        path = tmp_path / "outbox" / "2026-w48" / result.provider_id.rsplit("/", 1)[1]
        assert path.parent == tmp_path / "outbox" / "2026-w48"         # no escape from the folder
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["To"].addresses[0].addr_spec == result.recipient
        assert msg["Message-ID"] == result.message_id
    assert not [p for p in (tmp_path / "outbox").rglob(".*")]          # no temp files left behind


def test_sending_again_replaces_the_file(tmp_path):
    config = make_config(tmp_path, delivery={"file": {"dir": "outbox"}})
    factory = MessageFactory(rendered_issue("i1"), config, list_name="default")
    recipient = factory.recipient(Subscriber(email="ann@example.com"))
    with make_backend(config) as backend:
        backend.send(factory, [recipient])
        backend.send(factory, [recipient])
    assert len(list((tmp_path / "outbox" / "i1").iterdir())) == 1


def test_names_that_clean_to_the_same_file_stay_apart():
    assert safe_name("a b@example.com") != safe_name("a_b@example.com")
    assert safe_name("../../etc/passwd").startswith("_")
    assert "/" not in safe_name("x/y@example.com")
    assert len(safe_name("x" * 400 + "@example.com")) < 200


def test_an_outbox_that_cannot_be_created_is_a_config_error(tmp_path):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    config = make_config(tmp_path, delivery={"file": {"dir": "blocker/outbox"}})
    with pytest.raises(ConfigError, match="delivery.file.dir"):
        make_backend(config).open()


@pytest.mark.parametrize("name,cls", [("smtp", SMTPBackend), ("http", HTTPBackend), ("file", FileBackend),
                                      ("newsletter.backends.file:FileBackend", FileBackend)])
def test_backends_load_by_entry_point_or_by_path(name, cls):
    assert backend_class(name) is cls


@pytest.mark.parametrize("name,match", [("carrier-pigeon", "unknown backend"),
                                        ("newsletter.backends.file:Nope", "cannot load"),
                                        ("newsletter.errors:ConfigError", "not a newsletter Backend")])
def test_unknown_backends_are_config_errors(name, match):
    with pytest.raises(ConfigError, match=match):
        backend_class(name)


def test_every_builtin_backend_is_a_backend():
    assert all(issubclass(backend_class(n), Backend) for n in ("smtp", "http", "file"))
