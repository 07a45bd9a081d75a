"""`newsletter worker`: a Procrastinate worker that sends queued chunks through the pipeline (run),
the chunk task it runs (task), and the housekeeping that finds dead workers' chunks (stalled)."""
