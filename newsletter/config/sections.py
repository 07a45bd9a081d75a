"""The settings, one frozen dataclass per config.toml table; every key has its default here and
its comment in config.toml. Range checks are field metadata (checks.py) that load.py applies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import check_list_name
from .checks import bounded, checked, host_names, optional_duration, optional_list_name, positive

@dataclass(frozen=True)
class NewsletterSection:
    name: str = "My Newsletter"
    sender: str = "Newsletter <newsletter@example.org>"   # the From header
    reply_to: str = ""
    postal_address: str = ""
    base_url: str = "http://127.0.0.1:8000"                # where the web app answers (links)
    list_id: str = ""                                      # List-Id; derived from sender when empty
    language: str = "en"
    subject: str = "{name}: {title}"                       # {name}, {title}, {date}
    accent_color: str = "#1a56db"


@dataclass(frozen=True)
class PathsSection:
    issues: Path = Path("issues")
    templates: Path = Path("templates")
    subscribers: Path = Path("subscribers")
    state: Path = Path("state")


@dataclass(frozen=True)
class FetchSection:
    connect_timeout: float = positive(5.0)
    read_timeout: float = positive(20.0)
    max_bytes: int = bounded(5_000_000, 1)
    max_redirects: int = bounded(5, 0, 50)
    user_agent: str = ""                                   # default names the tool and its version


@dataclass(frozen=True)
class LLMSection:
    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = "default"
    api_key_env: str = ""                                  # env var holding the key; "" = no key
    timeout: float = positive(60.0)
    prompt: str = ("Summarise this article for a newsletter in at most {max_words} words, "
                   "in 1 to 3 plain sentences. No preamble.")
    fallback: str = "default"                              # summariser used when the endpoint fails; "" = none


@dataclass(frozen=True)
class SummarizeSection:
    summarizer: str = "default"
    max_words: int = bounded(60, 1)
    llm: LLMSection = field(default_factory=LLMSection)


@dataclass(frozen=True)
class DatabaseSection:
    url: str = "sqlite:///state/newsletter.db"


@dataclass(frozen=True)
class SigningSection:
    secret_env: str = "NEWSLETTER_SECRET_KEY"
    legacy_link_days: int = bounded(180, 0, 3650)          # earlier releases' address-bearing links


@dataclass(frozen=True)
class DKIMSection:
    enabled: bool = False
    selector: str = ""
    domain: str = ""                                       # default: the From address's domain
    key_file: Path = Path("dkim.key")


@dataclass(frozen=True)
class SMTPSection:
    host: str = "127.0.0.1"
    port: int = bounded(25, 1, 65535)
    security: str = "none"                                 # none | starttls | ssl
    username: str = ""
    password_env: str = ""
    timeout: float = positive(300.0)                       # greeting and each command (RFC 5321 §4.5.3.2)
    data_timeout: float = positive(600.0)                  # the reply to a message (§4.5.3.2.6)
    connections: int = bounded(4, 1, 1000)
    ca_file: str = ""                                      # extra CA bundle (tests, private CAs)


@dataclass(frozen=True)
class HTTPSection:
    provider: str = "generic"                              # postmark | mailgun | sendgrid | generic
    url: str = ""                                          # endpoint; provider default when empty
    api_key_env: str = ""
    domain: str = ""                                       # Mailgun sending domain
    timeout: float = positive(30.0)
    max_retries: int = bounded(5, 0, 100)
    batch_size: int = bounded(0, 0)                                    # 0 = the provider's limit
    message_stream: str = "broadcast"                      # Postmark MessageStream; bulk mail goes to a broadcast stream


@dataclass(frozen=True)
class FileSection:
    dir: Path = Path("state/outbox")


@dataclass(frozen=True)
class DeliverySection:
    backend: str = "file"                                  # smtp | http | file | "pkg.mod:Class"
    rate_per_second: float = bounded(0.0, 0)               # 0 = unlimited
    concurrency: int = bounded(4, 1, 1000)
    max_attempts: int = bounded(4, 1, 100)
    backoff_seconds: float = bounded(1.0, 0, 3600)
    pause_failure_ratio: float = bounded(0.5, 0, 1, above=True)   # stop when more than this share ...
    pause_window: int = bounded(50, 1)                     # ... of the last N results failed,
    pause_consecutive: int = bounded(10, 1)                # or N in a row (the first N go out alone)
    default_list: str = checked("default", check_list_name)
    smtp: SMTPSection = field(default_factory=SMTPSection)
    http: HTTPSection = field(default_factory=HTTPSection)
    file: FileSection = field(default_factory=FileSection)


@dataclass(frozen=True)
class FeedSource:
    url: str = ""
    section: str = ""


@dataclass(frozen=True)
class SourcesSection:
    feeds: tuple[FeedSource, ...] = ()


@dataclass(frozen=True)
class ScheduleSection:
    timezone: str = "UTC"
    cron: str = ""
    review: bool = False
    review_deadline: str = "24h"
    min_items: int = bounded(1, 0)
    max_items: int = bounded(12, 1)
    misfire_grace_time: str = "6h"
    list: str = checked("", optional_list_name)


@dataclass(frozen=True)
class InboxSection:
    fetch_every: str = checked("", optional_duration)        # `newsletter run` reads the feeds this often; "" = never
    prefetch: bool = True                                  # fetch and summarise each new link in the background


@dataclass(frozen=True)
class WebSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = bounded(8000, 0, 65535)                    # 0 = any free port
    rate_limit_per_hour: int = bounded(5, 0)
    proxy_hops: int = bounded(0, 0, 20)  # reverse proxies in front that set X-Forwarded-For/-Proto/-Host
    trusted_hosts: tuple[str, ...] = checked((), host_names)  # Host names answered; () = base_url's host and localhost
    max_body_bytes: int = bounded(3_000_000, 1024, 100_000_000)    # larger requests get 413 (webhooks: 2 MB)
    max_connections: int = bounded(200, 1, 100_000)
    idle_timeout: int = bounded(15, 1, 3600)                # seconds before an idle connection is closed


@dataclass(frozen=True)
class BouncesSection:
    soft_bounce_limit: int = bounded(3, 1, 1000)           # soft bounces in a row (one per issue) that mark an address bounced
    complaint_pause_ratio: float = bounded(0.001, 0, 1)  # complaints per delivered message of an issue that pause the list
    return_path: str = ""                # VERP envelope sender, e.g. "bounces+{token}@example.org"; "" = From
    maildir: str = ""                    # a Maildir folder that receives DSN/ARF reports
    imap_host: str = ""                  # or an IMAP mailbox (TLS always)
    imap_port: int = bounded(993, 1, 65535)
    imap_security: str = "ssl"           # ssl (port 993) | starttls (port 143)
    imap_user: str = ""
    password_env: str = ""
    folder: str = "INBOX"
    ca_file: str = ""                    # extra CA bundle for the IMAP server (tests, private CAs)


@dataclass(frozen=True)
class PostmarkHook:
    username: str = ""
    password_env: str = ""               # env var holding the basic-auth password; "" = hook off (404)


@dataclass(frozen=True)
class MailgunHook:
    signing_key_env: str = ""            # env var holding the HTTP webhook signing key; "" = off


@dataclass(frozen=True)
class SendGridHook:
    public_key_file: str = ""            # the Signed Event Webhook's verification key; "" = off


@dataclass(frozen=True)
class SESHook:
    certificate_file: str = ""           # the SNS signing certificate (PEM); "" = off
    topic_arns: tuple[str, ...] = ()     # SNS topics accepted; empty = any topic signed by the certificate


@dataclass(frozen=True)
class WebhooksSection:
    max_age_seconds: int = bounded(900, 1, 604_800)           # oldest signed timestamp accepted (Mailgun, SendGrid)
    postmark: PostmarkHook = field(default_factory=PostmarkHook)
    mailgun: MailgunHook = field(default_factory=MailgunHook)
    sendgrid: SendGridHook = field(default_factory=SendGridHook)
    ses: SESHook = field(default_factory=SESHook)


@dataclass(frozen=True)
class QueueSection:
    enabled: bool = False                                  # send through workers (PostgreSQL only)
    name: str = "newsletter"                               # the Procrastinate queue of send chunks
    chunk_size: int = 1000                                 # ledger rows per chunk (one job)
    concurrency: int = 1                                   # chunks one worker sends at once
    heartbeat_seconds: float = 5.0                         # how often a worker says it is alive
    stalled_seconds: float = 30.0                          # silence after which a worker is dead


@dataclass(frozen=True)
class Config:
    newsletter: NewsletterSection = field(default_factory=NewsletterSection)
    paths: PathsSection = field(default_factory=PathsSection)
    fetch: FetchSection = field(default_factory=FetchSection)
    summarize: SummarizeSection = field(default_factory=SummarizeSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    signing: SigningSection = field(default_factory=SigningSection)
    dkim: DKIMSection = field(default_factory=DKIMSection)
    delivery: DeliverySection = field(default_factory=DeliverySection)
    sources: SourcesSection = field(default_factory=SourcesSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    web: WebSection = field(default_factory=WebSection)
    inbox: InboxSection = field(default_factory=InboxSection)
    bounces: BouncesSection = field(default_factory=BouncesSection)
    webhooks: WebhooksSection = field(default_factory=WebhooksSection)
    queue: QueueSection = field(default_factory=QueueSection)
    root: Path = Path(".")                                 # folder of the config file
    path: Path | None = None                               # the config file itself

    def state_dir(self, *parts: str) -> Path:
        """Return a path under the state folder (not created)."""
        return self.paths.state.joinpath(*parts)

    def file_path(self, value: str) -> Path:
        """Return a file named in config (a str key such as webhooks.ses.certificate_file) as a
        path, relative ones taken from the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    def database_url(self) -> str:
        """Return the database URL with a relative SQLite path made relative to the config file."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rest = url[len(prefix):]
            if rest and rest != ":memory:":
                return prefix + str((self.root / rest).resolve())
        return url
