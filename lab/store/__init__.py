"""The results store: SQLite rows and one folder per run, written atomically."""
