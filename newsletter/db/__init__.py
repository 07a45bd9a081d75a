"""The database, the system of record: the schema (tables.py), the engine and transactions
(engine.py) and schema migrations with Alembic (migrate.py, revisions in newsletter/migrations)."""

from ..timeutil import as_utc, utcnow
from .engine import SCHEMA_HEAD, SCHEMA_LOCK, WAL_ATTEMPTS, create_tables, dispose_engines, engine_for_url, ensure_schema, get_engine, is_sqlite, recall, remember, unchecked_engine, write_transaction
from .tables import OPAQUE_LINKS_SINCE, STATUSES, SUPPRESSED, admin_sessions, api_tokens, deliveries, dismissed_links, erased_addresses, feedback_events, inbox_candidates, issues, list_pauses, meta, metadata, subscribers, suppressions, users

__all__ = ["OPAQUE_LINKS_SINCE", "SCHEMA_HEAD", "SCHEMA_LOCK", "STATUSES", "SUPPRESSED", "WAL_ATTEMPTS", "admin_sessions", "api_tokens", "create_tables", "deliveries", "dismissed_links", "dispose_engines", "engine_for_url", "ensure_schema", "erased_addresses", "feedback_events", "get_engine", "inbox_candidates", "is_sqlite", "issues", "list_pauses", "meta", "metadata", "recall", "remember", "subscribers", "suppressions", "unchecked_engine", "users", "write_transaction", "as_utc", "utcnow"]
