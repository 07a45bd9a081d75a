"""One send run through the ledger: the run (send), its loop over claimed rows (loop), the
worker tasks that hand batches to a backend (task), the per-issue lock (lock) and pacing (rate
limit, failure window, SIGINT/SIGTERM as a stop request)."""
