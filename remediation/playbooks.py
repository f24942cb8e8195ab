"""Playbooks: YAML files in rules/playbooks/ saying which actions a kind of finding calls for.

A playbook matches findings (by rule id glob, kind, MITRE technique / tag, provider — conditions
inside one ``match`` entry are ANDed, entries are ORed) and lists steps: an action from the
catalogue, its phase (contain → eradicate → recover), what to bind its target to, and why.

Bindings are templates over the finding: ``{person}`` (one step per person in the finding's
entities), ``{file}``, ``{app}``, ``{account}``, ``{ip}``, ``{domain}`` (the person's domain),
``{context.some.key}``, ``{finding.first_seen}``, ``{incident.first_seen}``. A value that is
exactly one ``{…}`` keeps its type; ``{context.doc_id|file}`` takes the first alternative
that has a value; a binding that cannot be filled leaves the step out of the
plan with the reason shown. ``@snapshot_before`` as a parameter value means "the configuration
object's last snapshot before the finding" (used to restore drifted policies).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core import loading
from remediation.catalogue import Phase, get_action
from remediation.errors import CatalogueError, PlaybookError

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "rules" / "playbooks"
ENTITY_VARIABLES = {"person": "people", "file": "files", "app": "apps", "account": "accounts", "ip": "ips"}
MATCH_KEYS = {"rule_id", "kind", "tags", "provider", "min_severity", "context"}
STEP_KEYS = {"action", "phase", "target", "params", "why", "after", "only_if"}
_TEMPLATE = re.compile(r"\{([a-zA-Z_][\w.|]*)\}")


def normalise_tag(tag: str) -> str:
    """'attack.t1114.003', 'T1114.003' and 't1114.003' are the same technique."""
    text = str(tag).strip().lower()
    return text[len("attack.") :] if text.startswith("attack.") else text


@dataclass(frozen=True)
class MatchClause:
    rule_ids: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    min_severity: str | None = None
    # Equality on finding context values (dotted keys), e.g. {"object_type": "ca_policy"} for drift.
    context: tuple[tuple[str, Any], ...] = ()

    def matches(self, finding: Any) -> bool:
        for key, wanted in self.context:
            try:
                if _descend(finding.context or {}, key.split(".")) != wanted:
                    return False
            except Unbound:
                return False
        if self.rule_ids and not any(fnmatch.fnmatchcase(finding.rule_id.lower(), g) for g in self.rule_ids):
            return False
        if self.kinds and finding.kind not in self.kinds:
            return False
        if self.providers and (finding.provider or "") not in self.providers:
            return False
        if self.tags and not set(self.tags) & finding_tags(finding):
            return False
        return not (
            self.min_severity and _severity_rank(finding.severity) < _severity_rank(self.min_severity)
        )


@dataclass(frozen=True)
class PlaybookStep:
    action: str
    phase: Phase
    why: str
    target: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    # Optional condition on the incident ({"priority": ["P1"]}) for a step to be proposed at all.
    only_if: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    id: str
    title: str
    description: str
    match: tuple[MatchClause, ...]
    steps: tuple[PlaybookStep, ...]
    source: str

    def matches(self, finding: Any) -> bool:
        return any(clause.matches(finding) for clause in self.match)


def finding_tags(finding: Any) -> set[str]:
    tags = {normalise_tag(t) for t in (finding.mitre or [])}
    tags |= {normalise_tag(t) for t in (finding.context or {}).get("tags", []) if isinstance(t, str)}
    # a sub-technique also counts as its parent technique
    tags |= {t.split(".")[0] for t in tags if t.startswith("t") and "." in t}
    return tags


_SEVERITIES = ("informational", "low", "medium", "high", "critical")


def _severity_rank(value: str) -> int:
    return _SEVERITIES.index(value) if value in _SEVERITIES else 0


def load_playbooks(directory: Path | None = None) -> list[Playbook]:
    """Every playbook in the directory, validated; a bad file raises PlaybookError naming it."""
    directory = directory or DEFAULT_DIR
    if not directory.is_dir():
        raise PlaybookError(
            f"playbook directory {directory} does not exist; set TENANTGUARD_REMEDIATION_PLAYBOOKS_DIR"
        )
    playbooks = [load_playbook(path) for path in sorted(directory.glob("*.y*ml"))]
    seen: dict[str, str] = {}
    for playbook in playbooks:
        if playbook.id in seen:
            raise PlaybookError(
                f"{playbook.source}: playbook id {playbook.id!r} is also used by {seen[playbook.id]}"
            )
        seen[playbook.id] = playbook.source
    return playbooks


def load_playbook(path: Path) -> Playbook:
    try:
        loaded = loading.load_path(path, kind="yaml")
    except loading.LoadError as exc:
        raise PlaybookError(str(exc)) from None
    return _playbook(loaded)


def parse_playbook(raw: Any, source: str = "<memory>") -> Playbook:
    return _playbook(loading.Loaded(source, [raw]))


# --------------------------------------------------------------------------- the file format

_FILE = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
Strings = str | list[str] | None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


class MatchEntry(BaseModel):
    """One `match:` entry; its conditions are ANDed (entries are ORed)."""

    model_config = _FILE

    rule_id: Strings = Field(default=None, description="Rule id glob(s), e.g. '*mass_download*'.")
    kind: Strings = Field(
        default=None, description="Finding kind(s): rule, correlation, anomaly, posture, ..."
    )
    tags: Strings = Field(default=None, description="MITRE technique(s) or tags, e.g. t1114.003.")
    provider: Strings = Field(default=None, description="m365, google or slack.")
    min_severity: Literal["informational", "low", "medium", "high", "critical"] | None = None
    context: dict[str, Any] | None = Field(default=None, description="Equality on finding context values.")

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or not raw:
            raise ValueError(f"a match entry is a mapping of {', '.join(sorted(MATCH_KEYS))}")
        unknown = set(raw) - MATCH_KEYS
        if unknown:
            raise ValueError(
                f"unknown match key(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(sorted(MATCH_KEYS))}"
            )
        severity = raw.get("min_severity")
        if severity is not None and severity not in _SEVERITIES:
            raise ValueError(f"min_severity {severity!r} is not one of {', '.join(_SEVERITIES)}")
        return raw

    def clause(self) -> MatchClause:
        return MatchClause(
            rule_ids=tuple(g.lower() for g in _strings(self.rule_id)),
            kinds=_strings(self.kind),
            tags=tuple(normalise_tag(t) for t in _strings(self.tags)),
            providers=_strings(self.provider),
            min_severity=self.min_severity,
            context=tuple(sorted((str(k), v) for k, v in (self.context or {}).items())),
        )


class StepEntry(BaseModel):
    """One step: a catalogue action, its phase, its target bindings and why it is needed."""

    model_config = _FILE

    action: str = Field(
        description="A catalogue action, e.g. m365.revoke_sessions (`tenantguard actions list`)."
    )
    phase: Phase
    target: dict[str, Any] = Field(
        default_factory=dict, description="Target fields, templates like {person}."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    why: str = Field(default="", description="What the approver reads: why the step is needed.")
    after: Strings = Field(default=None, description="Actions of this playbook that must run first.")
    only_if: dict[str, Any] | None = Field(default=None, description="e.g. {priority: [P1]}")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise ValueError("a step is a mapping with action, phase, target and why")
        unknown = set(raw) - STEP_KEYS
        if unknown:
            raise ValueError(
                f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; use {', '.join(sorted(STEP_KEYS))}"
            )
        try:
            spec = get_action(str(raw.get("action")))
        except CatalogueError as exc:
            raise ValueError(str(exc)) from None
        if spec.rollback_only:
            raise ValueError(f"{spec.name} is only used to roll back another action")
        if str(raw.get("phase")) not in {str(p) for p in Phase}:
            raise ValueError(f"phase {raw.get('phase')!r} is not one of {', '.join(Phase)}")
        if not str(raw.get("why", "") or "").strip():
            raise ValueError("say why the step is needed ('why:'), the approver reads it")
        target, params = raw.get("target") or {}, raw.get("params") or {}
        if not isinstance(target, dict) or not isinstance(params, dict):
            raise ValueError("target and params are mappings")
        declared_target = {f.name for f in spec.target}
        declared_params = {f.name for f in spec.params}
        bad = sorted(set(target) - declared_target) + sorted(set(params) - declared_params)
        if bad:
            raise ValueError(
                f"{spec.name} does not accept {', '.join(bad)} (target: {', '.join(sorted(declared_target)) or 'none'}; "
                f"params: {', '.join(sorted(declared_params)) or 'none'})"
            )
        return {**raw, "action": spec.name, "target": target, "params": params}

    def step(self) -> PlaybookStep:
        return PlaybookStep(
            action=self.action,
            phase=self.phase,
            why=self.why.strip(),
            target=dict(self.target),
            params=dict(self.params),
            after=_strings(self.after),
            only_if=dict(self.only_if or {}),
        )


class PlaybookFile(BaseModel):
    """A playbook file (rules/playbooks/*.yaml); `tenantguard schema playbook` prints its JSON Schema."""

    model_config = _FILE

    id: str = Field(min_length=1)
    title: str | None = None
    description: str = ""
    match: list[MatchEntry] = Field(min_length=1, description="Findings this playbook is for (any entry).")
    steps: list[StepEntry] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _top(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise ValueError("a playbook is a mapping with id, title, match and steps")
        unknown = set(raw) - {"id", "title", "description", "match", "steps"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        for key in ("id", "match", "steps"):
            if not raw.get(key):
                raise ValueError(f"missing {key!r}")
        return {
            **raw,
            "match": raw["match"] if isinstance(raw["match"], list) else [raw["match"]],
            "steps": raw["steps"] if isinstance(raw["steps"], list) else [raw["steps"]],
        }

    @model_validator(mode="after")
    def _order(self) -> PlaybookFile:
        names = {s.action for s in self.steps}
        for step in self.steps:
            for name in _strings(step.after):
                if name not in names:
                    raise ValueError(
                        f"step {step.action} is 'after' {name}, which is not a step of this playbook"
                    )
        return self


def _playbook(loaded: loading.Loaded) -> Playbook:
    parsed = loading.validate(PlaybookFile, loaded, error=PlaybookError)
    return Playbook(
        id=parsed.id,
        title=parsed.title or parsed.id,
        description=parsed.description.strip(),
        match=tuple(entry.clause() for entry in parsed.match),
        steps=tuple(entry.step() for entry in parsed.steps),
        source=loaded.source,
    )


# --------------------------------------------------------------------------- binding


class Unbound(Exception):
    """A template names a value the finding does not have (internal: turned into a plan note)."""


def template_variables(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_TEMPLATE.findall(value))
    if isinstance(value, dict):
        return set().union(*(template_variables(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(template_variables(v) for v in value)) if value else set()
    return set()


def fill(value: Any, variables: dict[str, Any]) -> Any:
    """Substitute ``{name}`` templates; a value that is exactly one template keeps its type."""
    if isinstance(value, dict):
        return {k: fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, variables) for v in value]
    if not isinstance(value, str):
        return value
    whole = _TEMPLATE.fullmatch(value)
    if whole:
        return _lookup(whole.group(1), variables)
    return _TEMPLATE.sub(lambda m: str(_lookup(m.group(1), variables)), value)


def _lookup(name: str, variables: dict[str, Any]) -> Any:
    """``a.b|c``: the first alternative that has a value."""
    alternatives = name.split("|")
    for alternative in alternatives[:-1]:
        try:
            return _lookup_one(alternative, variables)
        except Unbound:
            continue
    try:
        return _lookup_one(alternatives[-1], variables)
    except Unbound:
        raise Unbound(name) from None


def _lookup_one(name: str, variables: dict[str, Any]) -> Any:
    head, _, rest = name.partition(".")
    if head not in variables:
        raise Unbound(name)
    value = _descend(variables[head], rest.split(".") if rest else [])
    if value in (None, "", [], {}):
        raise Unbound(name)
    return value


def _descend(value: Any, parts: list[str]) -> Any:
    """Follow a dotted path; keys may themselves hold dots (detector context keeps field paths
    such as ``parameters.doc_id`` as flat keys), so the longest matching key wins; case-insensitive."""
    if not parts:
        return value
    if not isinstance(value, dict):
        raise Unbound(".".join(parts))
    lowered = {str(k).lower(): k for k in value}
    for size in range(len(parts), 0, -1):
        key = lowered.get(".".join(parts[:size]).lower())
        if key is not None:
            try:
                return _descend(value[key], parts[size:])
            except Unbound:
                continue
    raise Unbound(".".join(parts))
