"""This computer: which worker processes are alive, and keeping long-running processes lean."""
