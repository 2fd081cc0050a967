"""practiceplan: a command-line practice planner for musicians."""

__version__ = "0.1.0"
