"""What a merge-field snippet may do: the Jinja sandbox every snippet is parsed and run in, bounding
what one operator can build (MAX_OUTPUT, MAX_POWER_BITS) and refusing nested loops."""

from __future__ import annotations

from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_OUTPUT = 100_000                # characters a snippet may produce (or build) for one subscriber
MAX_POWER_BITS = 4_096              # an integer `**` result larger than this is refused


class MergeSandbox(SandboxedEnvironment):
    """The sandbox, also bounding what one operator can build: `'a' * 10**8` or `2 ** 10**8`
    would otherwise take the whole memory (or time) of the build and of every send."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                    and right * abs(left).bit_length() > MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} is too large for a merge field")
            return left ** right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                    and len(seq) * max(times, 0) > MAX_OUTPUT:
                raise SecurityError(f"a merge field may build at most {MAX_OUTPUT} characters or items")
        return left * right


# Snippets run in a sandbox (issue text is data, not code) with lenient undefined values.
ENV = MergeSandbox(undefined=jinja2.ChainableUndefined, autoescape=False,
                     keep_trailing_newline=True)

def check_loops(tree: nodes.Template) -> None:
    """Refuse a loop inside a loop: each may run 100,000 times (MAX_RANGE), so nested ones would
    hang the build and every send. Raises TemplateSyntaxError (the editor's text, shown as written)."""
    for loop in tree.find_all(nodes.For):
        for inner in loop.body:
            if isinstance(inner, nodes.For) or next(inner.find_all(nodes.For), None) is not None:
                raise jinja2.TemplateSyntaxError("a merge field may not nest one loop inside another",
                                                 loop.lineno)
