"""What the Rich views share: the table style and the colour of each session state."""

from __future__ import annotations

from typing import Any

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
    "before-plan": "dim",
}


def bare_table(**options: Any) -> Table:
    """The house table style (a rule under the header, no outer edge), columns still to add."""
    return Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, **options)


def new_table(*columns: str) -> Table:
    """A table in the house style whose columns fold long text."""
    table = bare_table()
    for column in columns:
        table.add_column(column, overflow="fold")
    return table
