"""Issue → Rendered, once per issue: Jinja2 → MJML → HTML → inlined CSS (issue), the per-subscriber
placeholders that survive it (placeholders), the pre-send checks (checks) and the saved render
under state/issues/<id>/ that a send reads (saved)."""
