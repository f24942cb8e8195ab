"""`tenantguard schema NAME`: the JSON Schema of a configuration file format, for editors
(e.g. yaml-language-server: ``# yaml-language-server: $schema=playbook.schema.json``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from cli.context import console, err_console

# name -> (module, pydantic model): the models the loaders validate with.
SCHEMAS: dict[str, tuple[str, str]] = {
    "playbook": ("remediation.playbooks", "PlaybookFile"),
    "policy": ("remediation.policy", "PolicyFile"),
    "posture-check": ("detectors.posture.checks", "CheckFile"),
    "connections": ("collectors.connections", "ConnectionsFile"),
    "oncall": ("oncall.spec", "OncallDocument"),
}


def json_schema(name: str) -> dict[str, Any]:
    module, model = SCHEMAS[name]
    schema: dict[str, Any] = getattr(importlib.import_module(module), model).model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCHEMAS)}.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Print the JSON Schema of a file format (playbook, policy, posture-check, connections, oncall)."""
    if name not in SCHEMAS:
        raise typer.BadParameter(f"{name!r} is not a file format; use one of {', '.join(SCHEMAS)}")
    text = orjson.dumps(json_schema(name), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    if output is None:
        console.print_json(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        err_console.print(f"wrote {output}")


COMMANDS: dict[str, Callable[..., Any]] = {"schema": schema}
