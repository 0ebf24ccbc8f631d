"""Background runs: the queue, worker processes, how a run's end is recorded, resume, progress; jobs/ray/ for a cluster."""
