"""The command-line layer: parses, builds, calls, renders — nothing else."""

from golive.cli.main import app, main

__all__ = ["app", "main"]
