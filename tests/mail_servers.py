"""Real mail servers for tests: an aiosmtpd SMTP server and a local HTTP server playing mail APIs.

Both answer per recipient through `reply_for(address) -> int | str`: 250 accepts, 4xx defers
(an HTTP API answers 429 for the call), 5xx rejects (each API in its own way).
"""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import ipaddress
import json
import re
import socket
import ssl
import threading
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, getaddresses, parseaddr
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

Reply = Callable[[str], "int | str"]
_TEXT = {250: "250 2.1.5 OK", 451: "451 4.7.1 Try again later", 452: "452 4.2.2 Mailbox full",
         550: "550 5.1.1 Mailbox unavailable", 553: "553 5.1.3 Bad address"}


def accept_all(address: str) -> int:
    """Accept every recipient."""
    return 250


class DeferFirst:
    """reply_for that defers each listed address the first `times` times, then accepts it."""

    def __init__(self, *addresses: str, times: int = 1, code: int = 451):
        self.left = {a: times for a in addresses}
        self.code = code
        self._lock = threading.Lock()

    def __call__(self, address: str) -> int:
        with self._lock:
            if self.left.get(address, 0) > 0:
                self.left[address] -= 1
                return self.code
        return 250


def reply_line(code: int | str) -> str:
    """Return a full SMTP reply line for a code (or the line itself)."""
    return code if isinstance(code, str) else _TEXT.get(code, f"{code} reply {code}")


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- certificates ---------------------------------------------------------------------------

def make_certs(folder: Path, hostname: str = "localhost") -> tuple[Path, Path, Path]:
    """Write a test CA and a server certificate for hostname and 127.0.0.1; return (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newsletter test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


# -- SMTP -----------------------------------------------------------------------------------

@dataclass
class Received:
    """One message an SMTP test server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        """Return the message parsed with the standard library's modern policy."""
        return email.message_from_bytes(self.data, policy=email.policy.default)


class _Handler:
    """aiosmtpd handler: answers RCPT through reply_for and keeps what DATA delivers."""

    def __init__(self, owner: "SMTPTestServer"):
        self.owner = owner

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = reply_line(self.owner.reply_for_mail(address)) if self.owner.reply_for_mail else "250 OK"
        if reply.startswith("2"):
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = reply_line(self.owner.reply_for(address))
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):
        with self.owner.lock:
            self.owner.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Ok: queued"


class _CountingController(Controller):
    """A Controller that counts the connections clients open."""

    def __init__(self, owner: "SMTPTestServer", *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def factory(self):
        with self.owner.lock:
            self.owner.connections += 1
        with warnings.catch_warnings():
            # Implicit TLS ("ssl") is TLS too, but aiosmtpd only counts STARTTLS and warns.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()


class SMTPTestServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 with per-recipient replies, optional TLS and AUTH.

    tls: None, "starttls" or "ssl" (then certs=(cert, key) is required); auth: (user, password);
    reply_for_mail answers MAIL FROM (default: accept); smtputf8=False leaves SMTPUTF8 out of EHLO.
    """

    def __init__(self, reply_for: Reply = accept_all, *, auth: tuple[str, str] | None = None,
                 tls: str | None = None, certs: tuple[Path, Path] | None = None, idle_timeout: float = 300,
                 reply_for_mail: Reply | None = None, smtputf8: bool = True):
        self.reply_for, self.auth, self.tls, self.certs = reply_for, auth, tls, certs
        self.smtputf8 = smtputf8        # False: a relay without SMTPUTF8 (RFC 6531)
        self.reply_for_mail = reply_for_mail
        self.idle_timeout = idle_timeout
        self.messages: list[Received] = []
        self.connections = 0
        self.lock = threading.Lock()
        self.host, self.port = "127.0.0.1", 0
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.auth is not None
              and auth_data.login.decode() == self.auth[0] and auth_data.password.decode() == self.auth[1])
        # handled=False: aiosmtpd itself answers 535 to a failed login.
        return AuthResult(success=ok, handled=False)

    def start(self) -> "SMTPTestServer":
        """Start listening on a free port."""
        kwargs: dict[str, Any] = {"timeout": self.idle_timeout, "enable_SMTPUTF8": self.smtputf8}
        if self.tls:
            assert self.certs, "TLS needs certs=(cert, key)"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, self.certs))
            kwargs["ssl_context" if self.tls == "ssl" else "tls_context"] = context
            kwargs["require_starttls"] = self.tls == "starttls"
        if self.auth:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls == "starttls")
        self.port = free_port()
        self._controller = _CountingController(self, _Handler(self), hostname=self.host, port=self.port,
                                               **kwargs)
        self._controller.start()
        with self.lock:
            self.connections = 0        # the controller's own start-up probe does not count
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SMTPTestServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def smtp_config(self, **overrides: Any) -> dict[str, Any]:
        """Return a [delivery.smtp] table pointing at this server."""
        cfg = {"host": self.host, "port": self.port, "timeout": 10, "connections": 2,
               "security": self.tls or "none"}
        cfg.update(overrides)
        return cfg


# -- HTTP mail APIs -------------------------------------------------------------------------

PATHS = {"postmark": "/email/batch", "mailgun": "/v3/mg.example.org/messages",
         "sendgrid": "/v3/mail/send", "generic": "/send"}
LIMITS = {"postmark": 500, "mailgun": 1000, "sendgrid": 1000, "generic": 1}


class HTTPMailAPIServer:
    """A local HTTP server that behaves like Postmark, Mailgun, SendGrid or a generic JSON endpoint.

    It checks the API key the provider's way, enforces the provider's batch limit, expands the
    provider's per-recipient variables and keeps each delivered message in .messages as a dict
    with to, from, subject, text, html and headers.
    """

    def __init__(self, provider: str, *, api_key: str = "test-api-key", reply_for: Reply = accept_all,
                 retry_after: str | None = "0"):
        assert provider in PATHS, provider
        self.provider, self.api_key, self.reply_for, self.retry_after = provider, api_key, reply_for, retry_after
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        # Statuses to answer the next calls with (e.g. 503); None answers that call normally.
        self.fail_next: list[int | None] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the endpoint a backend should post to."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}{PATHS[self.provider]}"

    def http_config(self, **overrides: Any) -> dict[str, Any]:
        """Return a [delivery.http] table pointing at this server."""
        cfg = {"provider": self.provider, "url": self.url, "api_key_env": "TEST_MAIL_API_KEY",
               "timeout": 10, "max_retries": 0}
        cfg.update(overrides)
        return cfg

    def start(self) -> "HTTPMailAPIServer":
        """Start serving on a free port in a thread."""
        owner = self

        class Handler(_APIHandler):
            server_owner = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HTTPMailAPIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the providers' behaviour ---------------------------------------------------------

    def authorised(self, headers: Any) -> bool:
        """Return True when the request carries the API key the provider's way."""
        if self.provider == "postmark":
            return headers.get("X-Postmark-Server-Token") == self.api_key
        if self.provider == "mailgun":
            expected = "Basic " + base64.b64encode(f"api:{self.api_key}".encode()).decode()
            return headers.get("Authorization") == expected
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def parse(self, body: bytes, content_type: str) -> list[dict[str, Any]]:
        """Return the messages a request asks for, per recipient, with variables filled in."""
        if self.provider == "mailgun":
            return self._parse_mailgun(body, content_type)
        return getattr(self, f"_parse_{self.provider}")(body)

    def _parse_postmark(self, body: bytes) -> list[dict[str, Any]]:
        return [{"to": parseaddr(m["To"])[1], "to_header": m["To"], "from": m["From"], "subject": m["Subject"],
                 "text": m.get("TextBody", ""), "html": m.get("HtmlBody", ""),
                 "headers": {h["Name"]: h["Value"] for h in m.get("Headers", [])}
                 | ({"Reply-To": m["ReplyTo"]} if "ReplyTo" in m else {}),
                 "stream": m.get("MessageStream")} for m in json.loads(body)]

    def _parse_mailgun(self, body: bytes, content_type: str) -> list[dict[str, Any]]:
        form = form_fields(body, content_type)
        variables = json.loads(form.get("recipient-variables", ["{}"])[0])
        out = []
        for name, addr in getaddresses(form["to"]):
            to = formataddr((name, addr))
            mine = variables.get(addr, {})

            def fill(text: str) -> str:
                return re.sub(r"%recipient\.([^%]+)%", lambda m: str(mine.get(m.group(1), "")), text)

            out.append({"to": addr, "to_header": to, "from": form["from"][0], "subject": fill(form["subject"][0]),
                        "text": fill(form["text"][0]), "html": fill(form["html"][0]),
                        "headers": {k[2:]: fill(v[0]) for k, v in form.items() if k.startswith("h:")}})
        return out

    def _parse_sendgrid(self, body: bytes) -> list[dict[str, Any]]:
        data = json.loads(body)
        content = {c["type"]: c["value"] for c in data["content"]}
        assert [c["type"] for c in data["content"]] == ["text/plain", "text/html"]
        out = []
        for p in data["personalizations"]:
            subs = p.get("substitutions", {})

            def fill(text: str) -> str:
                for key, value in subs.items():
                    text = text.replace(key, value)
                return text

            to = p["to"][0]
            out.append({"to": to["email"], "to_header": to, "from": data["from"],
                        "subject": fill(p.get("subject", data["subject"])),
                        "text": fill(content["text/plain"]), "html": fill(content["text/html"]),
                        "headers": {**data.get("headers", {}), **p.get("headers", {})},
                        "reply_to": data.get("reply_to")})
        return out

    def _parse_generic(self, body: bytes) -> list[dict[str, Any]]:
        m = json.loads(body)
        return [{"to": parseaddr(m["to"])[1], "to_header": m["to"], "from": m["from"], "subject": m["subject"],
                 "text": m["text"], "html": m["html"],
                 "headers": {**m.get("headers", {}), "Message-ID": m.get("message_id")}}]

    def answer(self, messages: list[dict[str, Any]]) -> tuple[int, dict[str, str], Any]:
        """Return (status, headers, JSON body) for a parsed request, recording what is delivered."""
        p = self.provider
        if len(messages) > LIMITS[p]:
            return 422 if p == "postmark" else 400, {}, {"ErrorCode": 410, "message": "Too many recipients"}
        codes = [int(str(self.reply_for(m["to"]))[:3]) for m in messages]
        if any(400 <= c < 500 for c in codes):
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return 429, headers, {"ErrorCode": 429, "message": "Rate limit exceeded, try again later"}
        bad = [i for i, c in enumerate(codes) if c >= 500]
        if p == "postmark":
            results = []
            for i, m in enumerate(messages):
                if i in bad:
                    results.append({"ErrorCode": 406, "Message": "You tried to send to recipient(s) that "
                                    "have been marked as inactive.", "To": m["to"]})
                else:
                    self.messages.append(m)
                    results.append({"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{len(self.messages)}",
                                    "To": m["to"]})
            return 200, {}, results
        if bad and p == "mailgun":
            return 400, {}, {"message": "'to' parameter is not a valid address. please check documentation"}
        if bad and p == "sendgrid":
            return 400, {}, {"errors": [{"message": "Does not contain a valid address.",
                                         "field": f"personalizations.{i}.to.0.email", "help": None}
                                        for i in bad]}
        if bad:
            return 422, {}, {"error": f"recipient {messages[0]['to']} rejected"}
        self.messages.extend(messages)
        n = len(self.messages)
        if p == "mailgun":
            return 200, {}, {"id": f"<call-{n}@mg.example.org>", "message": "Queued. Thank you."}
        if p == "sendgrid":
            return 202, {"X-Message-Id": f"sg-{n}"}, None
        return 200, {}, {"id": f"gen-{n}"}


def form_fields(body: bytes, content_type: str) -> dict[str, list[str]]:
    """Return the fields of a multipart/form-data or URL-encoded form body, each name to its values."""
    if content_type.startswith("multipart/form-data"):
        msg = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body,
                                       policy=email.policy.HTTP)
        fields: dict[str, list[str]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields.setdefault(name, []).append(part.get_payload(decode=True).decode("utf-8"))
        return fields
    return urllib.parse.parse_qs(body.decode(), keep_blank_values=True)


class _APIHandler(BaseHTTPRequestHandler):
    """Serves one HTTPMailAPIServer; keep-alive on, Nagle off (else every reply waits ~40 ms)."""

    server_owner: HTTPMailAPIServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server_owner
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with owner.lock:
            count = 0
            if self.path != PATHS[owner.provider]:
                status, headers, reply = 404, {}, {"message": "not found"}
            elif not owner.authorised(self.headers):
                status, headers, reply = 401, {}, {"ErrorCode": 10, "message": "Bad or missing API token"}
            elif owner.fail_next and owner.fail_next[0] is not None:
                status = owner.fail_next.pop(0)
                headers = {"Retry-After": owner.retry_after} if owner.retry_after is not None else {}
                reply = {"message": "temporarily unavailable"}
            else:
                if owner.fail_next:
                    owner.fail_next.pop(0)
                messages = owner.parse(body, self.headers.get("Content-Type", ""))
                count = len(messages)
                status, headers, reply = owner.answer(messages)
            owner.calls.append({"status": status, "recipients": count, "size": len(body)})
        data = b"" if reply is None else json.dumps(reply).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
