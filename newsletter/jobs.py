"""Old import path of the scheduled job functions, kept for jobs stored by earlier releases.

APScheduler stores a job's function as text ("newsletter.jobs:send_job") in the user's database;
those jobs must still run after an upgrade. New jobs name newsletter.schedule.jobs directly.
"""

from .schedule.jobs import auto_job, refire_job, send_job

__all__ = ["send_job", "auto_job", "refire_job"]
