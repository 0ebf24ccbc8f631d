"""Training on a Ray cluster: its settings, the dispatcher, one remote run, a node's task, several workers per run."""
