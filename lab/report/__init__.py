"""Turning stored runs into words and tables for people: what a run changed from its recipe."""
