"""Rendered × subscriber → message bytes: the MIME skeleton built once per issue (mime), the
per-subscriber splices and headers (message) and optional DKIM signing (dkim)."""
