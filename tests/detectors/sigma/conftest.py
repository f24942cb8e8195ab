"""Factories for Sigma engine tests: write rules to files, build events, run an engine."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.normalise import with_event_identity
from detectors.sigma.definitions import RulePack
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.errors import RuleProblem
from detectors.sigma.events import EventRecord, EventView, make_records
from detectors.sigma.loader import load_pack


@pytest.fixture
def make_pack(tmp_path: Path) -> Callable[..., RulePack]:
    """make_pack(yaml_text, ...) -> RulePack loaded from files in a fresh directory."""
    counter = {"n": 0}

    def make(*texts: str, lint: list[RuleProblem] | None = None) -> RulePack:
        folder = tmp_path / f"pack{counter['n']}"
        folder.mkdir()
        counter["n"] += 1
        for index, text in enumerate(texts):
            (folder / f"rule{index}.yml").write_text(textwrap.dedent(text))
        return load_pack([folder], lint=lint)

    return make


def rule_yaml(
    detection: str, *, product: str = "m365", service: str = "signins", extra: str = "", name: str = "r"
) -> str:
    """A minimal rule around a detection block (indented under `detection:`)."""
    body = textwrap.indent(textwrap.dedent(detection).strip(), "  ")
    return (
        f"title: test rule {name}\nname: {name}\nlogsource:\n  product: {product}\n  service: {service}\n"
        f"detection:\n{body}\nlevel: medium\n{textwrap.dedent(extra)}"
    )


_counter = {"id": 0}


def record(
    data: dict[str, Any], *, provider: str = "m365", stream: str = "signins", ts: float = 1_800_000_000.0
) -> EventRecord:
    _counter["id"] += 1
    stamped = with_event_identity(
        provider, stream, data, event_id=f"e{_counter['id']}", at=datetime.fromtimestamp(ts, UTC)
    )
    return make_records(provider, stream, stamped, event_id=_counter["id"], ts=ts)[0]


def view(data: dict[str, Any], **kwargs: Any) -> EventView:
    return EventView(record(data, **kwargs))


def matches(pack: RulePack, data: dict[str, Any], **kwargs: Any) -> bool:
    assert not pack.problems, pack.problems
    rule = pack.rules[0]
    return rule.matches(view(data, **kwargs))


def run(pack: RulePack, records: Iterable[EventRecord], **engine_kwargs: Any) -> Any:
    return DetectionEngine(pack, **engine_kwargs).process(list(records))
