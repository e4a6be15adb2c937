"""golive — take a web application live on a new stack, and take it back with one command."""

__version__ = "0.1.0"
