"""How list and show commands print: a table for people, JSON or CSV for scripts.

Every list command takes ``--output table|json|csv`` (and ``--json``, its shorthand); every show
command takes ``--json``. JSON goes to stdout unstyled (one document); cells are printed
literally, never read as Rich markup, so a title with ``[brackets]`` is shown as written.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer

from core.spreadsheet import escape_cell


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


OutputOption = Annotated[Output, typer.Option("--output", case_sensitive=False, help="table, json or csv.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


def chosen(output: Output, as_json: bool) -> Output:
    return Output.JSON if as_json else output


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, StrEnum):
        return value.value
    return value


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout (datetimes ISO 8601, anything else str())."""
    import orjson

    sys.stdout.write(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str).decode() + "\n"
    )


def _csv_cell(value: Any) -> str:
    import orjson

    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=str).decode()
    return str(value)


def emit(
    rows: Sequence[Mapping[str, Any]],
    output: Output,
    *,
    title: str,
    columns: Mapping[str, str],
    styles: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Print `rows` (plain values, one dict each) as `output`.

    `columns` maps a row key to its table heading (the table shows only these; JSON and CSV carry
    every key); `styles` maps a key to {value: Rich style} for table cells.
    """
    if output is Output.JSON:
        print_json([{k: _plain(v) for k, v in row.items()} for row in rows])
        return
    if output is Output.CSV:
        keys = list(rows[0]) if rows else list(columns)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(keys)
        for row in rows:
            writer.writerow([escape_cell(_csv_cell(row.get(k))) for k in keys])
        return
    from rich.table import Table
    from rich.text import Text

    from cli.context import console

    table = Table(title=Text(title))
    for heading in columns.values():
        table.add_column(heading, overflow="fold")
    for row in rows:
        cells = []
        for key in columns:
            value = row.get(key)
            text = _table_cell(value)
            style = (styles or {}).get(key, {}).get(text, "")
            cells.append(Text(text, style=style))
        table.add_row(*cells)
    console.print(table)


def _table_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, str) and len(value) >= 16 and value[10:11] == "T":  # an ISO time: minutes suffice
        return value[:16].replace("T", " ")
    return str(value)


def choice(values: Sequence[str] | None, allowed: Sequence[str], option: str) -> list[str] | None:
    """`values` checked against `allowed` (case as written there); an unknown one is refused
    naming every valid one, so `-p P7` never silently matches nothing."""
    if not values:
        return None
    lookup = {a.lower(): a for a in allowed}
    out = []
    for value in values:
        if value.lower() not in lookup:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)
        out.append(lookup[value.lower()])
    return out
