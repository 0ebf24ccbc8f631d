"""`python -m lab ...`: the argument parser and the commands (commands import the parser, never back)."""
