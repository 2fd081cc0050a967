"""What the Rich views share: the table style and the colour of each session state."""

from __future__ import annotations

from rich import box
from rich.table import Table

STATE_STYLE = {
    "completed": "green",
    "done": "green",
    "skipped": "dim",
    "expired": "dim",
    "missed": "red",
    "overdue": "bold red",
    "due": "yellow",
    "upcoming": "cyan",
    "scheduled": "cyan",
    "moved": "magenta",
}


def new_table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
