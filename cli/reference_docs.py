"""The generated parts of docs/: the configuration reference, the connections-file reference and
its JSON Schema, and each provider's per-stream permissions and per-action remediation
permissions — written from the models and registries they describe, so they cannot drift
(`tenantguard config docs` writes them, `--check` fails when one is stale; a test runs it).

A generated block in a Markdown file sits between ``<!-- generated: NAME -->`` and
``<!-- end generated -->``; the text around it is written by hand.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w:-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def _stream_table(provider: str) -> str:
    from collectors.streams.base import streams_for

    lines = [
        "| stream | kind | every | read permission / scope | needs |",
        "|---|---|---|---|---|",
    ]
    for spec in streams_for(provider):
        needs = [f"config `{k}`" for k in spec.needs_config] + (
            ["secret " + " or ".join(f"`{s}`" for s in spec.needs_secret)] if spec.needs_secret else []
        )
        every = (
            f"{spec.interval_seconds // 60} min"
            if spec.interval_seconds >= 60
            else f"{spec.interval_seconds} s"
        )
        lines.append(
            f"| `{spec.name}` | {spec.kind} | {every} | `{spec.permission}` | {', '.join(needs) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def _action_table(provider: str) -> str:
    from remediation.catalogue import all_actions

    lines = ["| action | what it does | permission / scope | reversible |", "|---|---|---|---|"]
    for action in sorted(all_actions(), key=lambda a: a.name):
        if str(action.provider) != provider:
            continue
        lines.append(
            f"| `{action.name}` | {action.title} | `{action.permission}` | {'yes' if action.reversible else 'no'} |"
        )
    return "\n".join(lines) + "\n"


_MEANINGS = {"provider": "m365, google or slack.", "enabled": "false: kept, not collected."}


def _connection_fields() -> str:
    from collectors.connections import ConnectionEntry

    lines = ["| key | type | required | meaning |", "|---|---|---|---|"]
    for name, info in ConnectionEntry.model_fields.items():
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation)
        annotation = annotation.replace("typing.", "").replace("|", "or")
        meaning = info.description or _MEANINGS.get(name, "")
        lines.append(f"| `{name}` | {annotation} | {'yes' if info.is_required() else 'no'} | {meaning} |")
    return "\n".join(lines) + "\n"


def _provider_requirements() -> str:
    import providers

    lines = ["| provider | required config | required secrets (one of each group) |", "|---|---|---|"]
    for name in providers.names():
        spec = providers.get(name)
        secrets = "; ".join(" or ".join(f"`{s}`" for s in group) for group in spec.required_secrets)
        config = ", ".join(f"`{k}`" for k in spec.required_config) or "—"
        lines.append(f"| `{name}` | {config} | {secrets or '—'} |")
    return "\n".join(lines) + "\n"


def _settings() -> str:
    from core.settings import settings_table

    return settings_table() + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "settings": _settings,
    "connection-fields": _connection_fields,
    "provider-requirements": _provider_requirements,
    **{f"streams:{p}": functools.partial(_stream_table, p) for p in ("m365", "google", "slack")},
    **{f"actions:{p}": functools.partial(_action_table, p) for p in ("m365", "google", "slack")},
}


def render(text: str) -> str:
    """`text` with every generated block replaced by what it should say now."""

    def fill(match: re.Match[str]) -> str:
        make = BLOCKS.get(match["name"])
        if make is None:
            raise KeyError(f"unknown generated block {match['name']!r}; known: {', '.join(BLOCKS)}")
        return match.group(1) + make() + match.group(4)

    return _BLOCK.sub(fill, text)


def schema_text() -> str:
    import orjson

    from cli.commands.schema import json_schema

    return (
        orjson.dumps(json_schema("connections"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
        + "\n"
    )


def stale(docs: Path = DOCS, *, write: bool) -> list[Path]:
    """The generated files under `docs` that are out of date (written afresh when `write`)."""
    out = []
    wanted: dict[Path, str] = {docs / "connections.schema.json": schema_text()}
    for path in sorted(docs.rglob("*.md")):
        wanted[path] = render(path.read_text(encoding="utf-8"))
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(path)
            if write:
                path.write_text(text, encoding="utf-8")
    return out
