"""The Procrastinate app of the send queue: built from config, on the project's PostgreSQL database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from ..errors import ConfigError

if TYPE_CHECKING:
    from procrastinate import App

    from ..config import Config

# The one task of the queue: send one chunk of an issue's ledger rows. Enqueued by name, so the
# enqueueing side never imports the worker that runs it.
CHUNK_TASK = "newsletter.send_chunk"


def conninfo(url: str) -> str:
    """Return the libpq connection string of a SQLAlchemy PostgreSQL URL (query options kept)."""
    from psycopg.conninfo import make_conninfo

    parsed = make_url(url)
    params = {"host": parsed.host, "port": parsed.port, "user": parsed.username,
              "password": parsed.password, "dbname": parsed.database}
    for key, value in parsed.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


def require_queue(config: "Config") -> None:
    """Raise ConfigError unless [queue] is enabled (with a PostgreSQL database, checked at load)."""
    if not config.queue.enabled:
        raise ConfigError("the send queue is off: set [queue] enabled = true (with a PostgreSQL "
                          "database.url) to send with workers")


def make_app(config: "Config", *, pool_size: int = 4) -> "App":
    """Return a Procrastinate App on config's database, not opened (raises ConfigError without psycopg).

    The pool (at most pool_size connections) is opened only by a worker; the enqueueing side
    passes its own connection, inside its own transaction.
    """
    try:
        from procrastinate import App, PsycopgConnector
    except ImportError as err:
        raise ConfigError(f"the send queue needs procrastinate and psycopg: {err}") from err
    connector = PsycopgConnector(conninfo=conninfo(config.database_url()), min_size=1,
                                 max_size=max(2, pool_size), kwargs={"application_name": "newsletter"})
    return App(connector=connector)
