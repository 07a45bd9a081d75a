"""The send queue: an issue's ledger rows cut into chunks that Procrastinate workers on any host
send (PostgreSQL only): enqueueing in our own transaction (enqueue), the chunk's life on a worker
(chunks), the rate limit shared through the database (ratelimit), progress and live workers
(progress), Procrastinate's own schema (schema) and our tables (tables)."""
