"""CIFAR-10 Lab: the library behind the app and the `python -m lab` command line.

Nothing in this package imports streamlit: pages call into it, never the reverse.
"""

__version__ = "0.1.0"
