"""Scheduled sends and the automatic digest on APScheduler 3: the job store and scheduling calls
(scheduler), time parsing (times), the single-scheduler lease (lease), our own job and digest
records (records), the functions jobs name (jobs), the `newsletter run` daemon (daemon) and the
automatic digest's state machine (autodigest)."""
