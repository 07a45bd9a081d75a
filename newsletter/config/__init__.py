"""Settings: config.toml loaded into frozen dataclasses, one per table (sections.py), with every
value type- and range-checked (checks.py) and errors naming the file and key (load.py)."""

from .load import DEFAULT_CONFIG, ENV_CONFIG, secret, config_path, load_config, config_from_dict, is_postgres_url
from .sections import NewsletterSection, PathsSection, FetchSection, LLMSection, SummarizeSection, DatabaseSection, SigningSection, DKIMSection, SMTPSection, HTTPSection, FileSection, DeliverySection, FeedSource, SourcesSection, ScheduleSection, InboxSection, WebSection, BouncesSection, PostmarkHook, MailgunHook, SendGridHook, SESHook, WebhooksSection, QueueSection, Config

__all__ = ["ENV_CONFIG", "DEFAULT_CONFIG", "secret", "config_path", "load_config", "config_from_dict", "is_postgres_url", "NewsletterSection", "PathsSection", "FetchSection", "LLMSection", "SummarizeSection", "DatabaseSection", "SigningSection", "DKIMSection", "SMTPSection", "HTTPSection", "FileSection", "DeliverySection", "FeedSource", "SourcesSection", "ScheduleSection", "InboxSection", "WebSection", "BouncesSection", "PostmarkHook", "MailgunHook", "SendGridHook", "SESHook", "WebhooksSection", "QueueSection", "Config"]
