"""What the PostgreSQL benchmarks (million.py, workers.py) share: a scratch database made on the
server and dropped afterwards, and the config.toml of a project that sends through the queue to
an SMTP relay on a local port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SECRET_ENV = "BENCH_SECRET"
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin(pg: str, sql: str) -> None:
    """Run sql on the postgres database of the server the SQLAlchemy URL pg names (autocommit)."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(pg)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def scratch_database(pg: str, name: str) -> Iterator[str]:
    """Create database name on pg's server (dropping a leftover one first) and yield its URL; drop it
    afterwards, WITH (FORCE): a worker the benchmark stopped may still hold a connection."""
    _admin(pg, f"DROP DATABASE IF EXISTS {name}")
    _admin(pg, f"CREATE DATABASE {name}")
    try:
        yield f"{pg.rsplit('/', 1)[0]}/{name}"
    finally:
        _admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_queue_config(folder: Path, url: str, port: int, *, queue: str = "", smtp: str = "") -> Path:
    """Write folder/config.toml: database url, [queue] on (plus the lines queue), 4 SMTP connections
    to 127.0.0.1:port (plus the lines smtp); return its path. The key comes from $BENCH_SECRET."""
    path = folder / "config.toml"
    path.write_text(f"""
[newsletter]
name = "Bench Weekly"
sender = "Bench Weekly <news@example.org>"
base_url = "https://news.example.org"
[signing]
secret_env = "{SECRET_ENV}"
[database]
url = "{url}"
[queue]
enabled = true
{queue}
[delivery]
backend = "smtp"
concurrency = 4
[delivery.smtp]
host = "127.0.0.1"
port = {port}
connections = 4
{smtp}
""", encoding="utf-8")
    return path
