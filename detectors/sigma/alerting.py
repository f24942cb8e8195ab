"""Matches -> finding drafts, the Panther way: a dedup key groups matches inside a dedup period
into one alert with a count, and a threshold (optionally of distinct values) must be reached
before the alert fires.

Dedup key: the rule id plus the values of the rule's `dedup` fields (default: the stream's actor
field, e.g. the user; `dedup: []` means one alert per rule and period). Correlations add their
group-by values. The period starts at the first match and is measured in event time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.entities import EntityKind
from core.findings import MAX_EVIDENCE, FindingDraft
from core.normalise.records import strip_port
from detectors.sigma.compiler import FieldPath
from detectors.sigma.definitions import CompiledCorrelation, CompiledRule
from detectors.sigma.events import EventView, stringform
from detectors.sigma.logsource import profile

MAX_ENTITY_VALUES = 25
MAX_DISTINCT = 10_000
MAX_DEDUP_KEY = 500
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.@-]+)\}")


@dataclass(slots=True)
class Hit:
    """One match of a rule (or one firing of a correlation) on the way to becoming an alert."""

    source: CompiledRule | CompiledCorrelation
    ts: float
    event_ids: tuple[int | str, ...]
    view: EventView
    group: dict[str, str] | None = None
    count: int = 1
    first_ts: float | None = None
    values: tuple[str, ...] = ()


@dataclass(slots=True)
class OpenAlert:
    key: str
    source: CompiledRule | CompiledCorrelation
    window_start: float
    first_seen: float
    last_seen: float
    count: int = 0
    evidence: list[int | str] = field(default_factory=list)
    distinct: set[str] = field(default_factory=set)
    entities: dict[str, list[str]] = field(default_factory=dict)
    fired: bool = False
    title: str = ""
    context: dict[str, Any] = field(default_factory=dict)


def render_title(template: str, view: EventView, extra: dict[str, Any]) -> str:
    """`{field.path}` placeholders from the event (case-insensitive), `{count}` and group values."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in extra:
            return str(extra[name])
        lowered = {k.lower(): v for k, v in extra.items()}
        if name.lower() in lowered:
            return str(lowered[name.lower()])
        found = view.get(name)
        if found is None:
            return "?"
        if isinstance(found, dict | list):
            return "…"
        return str(found)[:200]

    return _PLACEHOLDER.sub(value, template)[:500]


def _first_text(view: EventView, path: FieldPath) -> str | None:
    for value in view.resolve(path.dotted, path.segments):
        form = stringform(value)
        if form is not None:
            return form
    return None


def _looks_like_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _entity_values(view: EventView, source: CompiledRule | CompiledCorrelation) -> Iterator[tuple[str, str]]:
    record = view.record
    spec = source.alert
    assert spec is not None
    stream = profile(record.provider, record.stream)
    defaults = stream.entities
    for kind in (k.value for k in EntityKind):
        paths = [FieldPath.of(p) for p in defaults.get(kind, ())] + list(spec.entities.get(kind, ()))
        for path in paths:
            for value in view.resolve(path.dotted, path.segments):
                if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
                    continue
                text = str(value)
                if kind == "people":
                    text = text.lower()
                    if "@" not in text or text in stream.system_people:
                        continue
                elif kind == "ips":
                    text = strip_port(text) or ""  # Exchange's ClientIP is "1.2.3.4:51234"
                    if not _looks_like_ip(text):
                        continue
                yield kind, text


def _group_entities(group: dict[str, str] | None, values: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    for value in (*(group or {}).values(), *values):
        if "@" in value and " " not in value:
            yield "people", value.lower()
        elif _looks_like_ip(value):
            yield "ips", value


def dedup_key(
    source: CompiledRule | CompiledCorrelation, view: EventView, group: dict[str, str] | None
) -> str:
    spec = source.alert
    assert spec is not None
    parts = [source.rule_id]
    if group:
        parts.extend(f"{k}={v.lower()}" for k, v in sorted(group.items()))
    fields = spec.dedup_fields
    if fields is None and not group:
        actor = profile(view.record.provider, view.record.stream).actor_path
        fields = (FieldPath.of(actor),) if actor else ()
    for path in fields or ():
        parts.append(f"{path.dotted}={_first_text(view, path) or ''}")
    key = "|".join(parts)
    if len(key) > MAX_DEDUP_KEY:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        key = f"{source.rule_id[:200]}|sha256:{digest}"
    return key


class Alerter:
    """Holds open alerts (bounded) and turns hits into fired/updated alerts."""

    def __init__(self, *, max_open: int = 200_000) -> None:
        # by (tenant, dedup key): two tenants' matches are two alerts, whose drafts keep the
        # plain key (the detection stage adds the tenant, `detectors.pipeline.by_tenant`)
        self.open: dict[tuple[str, str], OpenAlert] = {}
        self.max_open = max_open
        self.dirty: dict[int, OpenAlert] = {}
        self._watermark = 0.0
        self._last_sweep = 0.0

    def add(self, hit: Hit, *, emit: bool = True) -> None:
        source = hit.source
        spec = source.alert
        assert spec is not None
        key = dedup_key(source, hit.view, hit.group)
        slot = (hit.view.record.tenant, key)
        alert = self.open.get(slot)
        first = hit.first_ts if hit.first_ts is not None else hit.ts
        if alert is not None and not (
            alert.window_start - spec.dedup_period < hit.ts < alert.window_start + spec.dedup_period
        ):
            self.open.pop(slot, None)
            alert = None
        if alert is None:
            alert = OpenAlert(key=key, source=source, window_start=hit.ts, first_seen=first, last_seen=hit.ts)
            self.open[slot] = alert
            if len(self.open) > self.max_open:
                self.open.pop(next(iter(self.open)))
        alert.first_seen = min(alert.first_seen, first)
        alert.last_seen = max(alert.last_seen, hit.ts)
        alert.count += hit.count
        room = MAX_EVIDENCE - len(alert.evidence)
        if room > 0:
            alert.evidence.extend(e for e in hit.event_ids[:room] if e not in alert.evidence)
        if spec.unique is not None and len(alert.distinct) < MAX_DISTINCT:
            value = _first_text(hit.view, spec.unique)
            if value is not None:
                alert.distinct.add(value)
        self._collect_entities(alert, hit)
        reached = (len(alert.distinct) if spec.unique is not None else alert.count) >= spec.threshold
        if reached:
            if not alert.fired:
                alert.fired = True
                alert.title = render_title(spec.title_template, hit.view, self._title_extra(alert, hit))
                alert.context = self._context(alert, hit)
            if emit:
                self.dirty[id(alert)] = alert
        self._maybe_sweep(hit.ts)

    @staticmethod
    def _title_extra(alert: OpenAlert, hit: Hit) -> dict[str, Any]:
        extra: dict[str, Any] = dict(hit.group or {})
        extra["count"] = alert.count
        extra["distinct"] = len(alert.distinct)
        extra["rule"] = alert.source.title
        return extra

    @staticmethod
    def _collect_entities(alert: OpenAlert, hit: Hit) -> None:
        for kind, value in (*_entity_values(hit.view, alert.source), *_group_entities(hit.group, hit.values)):
            bucket = alert.entities.setdefault(kind, [])
            if value not in bucket and len(bucket) < MAX_ENTITY_VALUES:
                bucket.append(value)

    @staticmethod
    def _context(alert: OpenAlert, hit: Hit) -> dict[str, Any]:
        spec = alert.source.alert
        assert spec is not None
        fields: dict[str, Any] = {}
        for path in spec.context_fields:
            values = [v for v in hit.view.resolve(path.dotted, path.segments) if v is not None]
            if values:
                fields[path.written] = values[0] if len(values) == 1 else values[:10]
        record = hit.view.record
        context: dict[str, Any] = {
            "fields": fields,
            "rule_title": alert.source.title,
            "stream": f"{record.provider}/{record.stream}",
            "window_start": alert.window_start,
            "dedup_period_seconds": spec.dedup_period,
        }
        if spec.threshold > 1:
            context["threshold"] = spec.threshold
            if spec.unique is not None:
                context["unique_field"] = spec.unique.written
        if hit.group:
            context["group"] = dict(hit.group)
        if spec.tactics:
            context["tactics"] = list(spec.tactics)
        if spec.references:
            context["references"] = list(spec.references)
        return context

    def _maybe_sweep(self, ts: float) -> None:
        self._watermark = max(self._watermark, ts)
        if self._watermark - self._last_sweep < 3600 and len(self.open) < self.max_open:
            return
        self._last_sweep = self._watermark
        for key in [k for k, a in self.open.items() if a.window_start + 2 * _period(a) < self._watermark]:
            del self.open[key]

    def drain(self) -> list[FindingDraft]:
        drafts = [to_draft(alert) for alert in self.dirty.values()]
        self.dirty.clear()
        return drafts


def _period(alert: OpenAlert) -> float:
    spec = alert.source.alert
    return spec.dedup_period if spec is not None else 3600.0


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def to_draft(alert: OpenAlert) -> FindingDraft:
    source = alert.source
    spec = source.alert
    assert spec is not None
    is_correlation = isinstance(source, CompiledCorrelation)
    context = dict(alert.context)
    if spec.unique is not None:
        context["distinct_count"] = len(alert.distinct)
    return FindingDraft(
        rule_id=source.rule_id,
        kind="correlation" if is_correlation else "detection",
        severity=spec.severity,
        confidence=spec.confidence,
        title=alert.title or source.title,
        description=source.description,
        provider=source.provider,
        entities={kind: list(values) for kind, values in alert.entities.items() if values},
        evidence_event_ids=tuple(alert.evidence),
        first_seen=_when(alert.first_seen),
        last_seen=_when(alert.last_seen),
        count=alert.count,
        dedup_key=alert.key,
        window_start=alert.window_start,
        mitre=spec.mitre,
        context=context,
        runbook=spec.runbook,
    )
