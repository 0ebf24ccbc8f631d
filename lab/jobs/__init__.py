"""Background runs: a queue in the store, worker processes, cancel and recovery, progress from events."""
