"""Benchmark: build N personalised messages from one realistic rendered issue; prints messages/s last.

    python bench/personalize.py [--messages 20000] [--dkim] [--merge-fields]

The issue is rendered by the real pipeline (Jinja2 → MJML → premailer) with as many items as it
takes to make about 30 KB of HTML. Timed: MessageFactory.recipient() (signed unsubscribe token,
Message-ID) plus build() (headers, quoted-printable splice, DKIM when --dkim) for each subscriber.
With --merge-fields the intro greets each subscriber with `{{ subscriber.name or 'there' }}` and
`{% if subscriber.city %}`, so every message also evaluates merge fields (names all differ).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from newsletter.config import config_from_dict
from newsletter.models import Issue, Item, Subscriber
from newsletter.personalize.message import MessageFactory
from newsletter.render.issue import DEFAULT_TEMPLATES, render_issue

TARGET_HTML_BYTES = 30_000
SECTIONS = ("World", "Science", "Technology")


MERGE_INTRO = ("Hello {{ subscriber.name or 'there' }}{% if subscriber.city %} in "
               "{{ subscriber.city }}{% endif %}, and welcome to this week's issue. ")
CITIES = ("Oslo", "Lyon", "Porto", "Graz", "")


def realistic_issue(n_items: int, merge_fields: bool = False) -> Issue:
    """Return an issue of n_items with headline-, summary- and URL-sized fields."""
    items = tuple(Item(
        url=f"https://news.example.com/2026/11/{i:02d}/a-story-about-something-that-happened-{i}",
        title=f"Story {i}: a headline of the usual length about something that happened this week",
        summary=("The summary says in two or three plain sentences what the article reports, "
                 "who is involved and why it matters to the reader of this digest. ") * 2,
        source="Example News", author="A. Writer", date="2026-11-20", section=SECTIONS[i % 3])
        for i in range(n_items))
    return Issue(id="2026-w48", title="The Weekly Digest", date="2026-11-25",
                 intro=(MERGE_INTRO if merge_fields else "") + "Hello, and welcome to this week's issue. " * 3,
                 items=items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--dkim", action="store_true", help="sign every message (RSA-2048, dkimpy)")
    parser.add_argument("--merge-fields", action="store_true", help="greet each subscriber by merge fields")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-personalize-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, root: Path) -> None:
    """Render the issue under root, then time recipient() + build() for args.messages subscribers."""
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    data = {"newsletter": {"name": "The Weekly Digest", "sender": "The Weekly Digest <news@example.org>",
                           "base_url": "https://news.example.org"},
            "paths": {"templates": str(DEFAULT_TEMPLATES), "state": str(root / "state")}}
    if args.dkim:
        data["dkim"] = {"enabled": True, "selector": "bench", "key_file": str(_write_key(root))}
    config = config_from_dict(data, root)

    n_items, rendered = 1, None
    while rendered is None or (len(rendered.html.encode()) < TARGET_HTML_BYTES and n_items < 40):
        rendered = render_issue(realistic_issue(n_items, args.merge_fields), config)
        n_items += 1
    factory = MessageFactory(rendered, config, list_name="default")
    people = [Subscriber(email=f"reader{i}@example.com", name=f"Reader Number {i}", id=i,
                         fields={"city": CITIES[i % len(CITIES)]} if args.merge_fields else {})
              for i in range(args.messages)]

    start = time.perf_counter()
    size = 0
    for person in people:
        size += len(factory.build(factory.recipient(person)))
    elapsed = time.perf_counter() - start
    print(f"issue: {n_items - 1} items, HTML {len(rendered.html.encode()):,} bytes, "
          f"text {len(rendered.text.encode()):,} bytes; dkim={'on' if args.dkim else 'off'}; "
          f"merge fields: {len(rendered.merge_fields)}")
    print(f"built {args.messages:,} messages ({size / args.messages / 1024:.1f} KB each) "
          f"in {elapsed:.2f} s")
    print(f"{args.messages / elapsed:.0f} messages/s")


def _write_key(root: Path) -> Path:
    """Write a fresh RSA-2048 DKIM key under root and return its path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = root / "dkim.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


if __name__ == "__main__":
    main()
