"""Small SQL builders shared by the repositories."""

from __future__ import annotations

from typing import Any


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``(" AND a = ? AND b IS NULL", [value])`` from ``(clause, value)`` pairs: a pair whose value is None or
    False is left out; a clause with a ``?`` takes the value as its parameter, one without is just switched on
    (``("deleted_at IS NULL", not include_deleted)``)."""
    sql = ""
    params: list[Any] = []
    for clause, value in conditions:
        if value is None or value is False:
            continue
        sql += f" AND {clause}"
        if "?" in clause:
            params.append(value)
    return sql, params


def order_limit(order: str, limit: int | None) -> str:
    """`` ORDER BY ...`` plus `` LIMIT n`` when ``limit`` is set (an int, never a parameter string)."""
    return f" ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else "")
