"""Incident priority P1–P4 = severity × confidence × privilege × assets × spread, each factor explained.

Pure: the build step gathers the inputs (findings, the people involved with their admin roles,
the files) and stores the result on the incident as ``priority_factors``, so an analyst sees why
an incident is P1 without reading code:

* severity — weight of the most severe finding (informational 0.1 … critical 1.0);
* confidence — independent evidence corroborates: 1 − ∏(1 − cᵢ) over the findings, where
  findings citing the same events count once (with the highest confidence among them), and
  anomalies together count as one line of evidence at ×0.85 (unusual is not yet malicious);
* privilege — ×1.6 when a person holds a top admin role (Global Administrator, Super Admin, Slack
  owner), ×1.3 for any other admin role, ×1.0 otherwise;
* assets — ×1.25 when a file looks sensitive (label or name), ×1.2 when it is exposed publicly or
  outside the organisation (together at most ×1.5);
* spread — ×(1 + 0.1 per extra person + 0.1 per extra provider), at most ×1.5.

Thresholds: P1 ≥ 0.8, P2 ≥ 0.65, P3 ≥ 0.3, else P4. So a confident high-severity finding about an
ordinary user is P2, the same about a global admin is P1, a lone medium finding is P3 — and stays
P3 for an ordinary admin, but is P2 for a top admin or a sensitive file exposed publicly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.models.enums import Priority, Severity
from timeline.entities import TOP_ADMIN_ROLES

SEVERITY_WEIGHT = {
    Severity.INFORMATIONAL: 0.1,
    Severity.LOW: 0.25,
    Severity.MEDIUM: 0.5,
    Severity.HIGH: 0.75,
    Severity.CRITICAL: 1.0,
}
# Behavioural anomalies (new country, impossible travel) flag what is unusual; travellers and VPNs
# make many of them benign, so on their own they weigh less than a detection of a malicious act.
ANOMALY_WEIGHT = 0.85
MAX_NAMED_PEOPLE = 20
THRESHOLDS = ((Priority.P1, 0.8), (Priority.P2, 0.65), (Priority.P3, 0.3))
FORMULA = "severity × confidence × privilege × assets × spread"
SENSITIVE_WORDS = (
    "payroll",
    "salary",
    "salaries",
    "confidential",
    "secret",
    "passport",
    "ssn",
    "credential",
    "password",
    "finance",
    "financial",
    "budget",
    "forecast",
    "contract",
    "customer",
    "board",
    "merger",
    "acquisition",
    "m&a",
    "legal",
    "tax",
    "bank",
    "hr ",
    "personnel",
    "employee",
    "medical",
    "health",
)
SENSITIVE_LABELS = (
    "confidential",
    "highly confidential",
    "restricted",
    "secret",
    "sensitive",
    "internal only",
)
EXPOSURE_VALUES = (
    "public",
    "anyone",
    "anyone_with_link",
    "anyonewithlink",
    "people_with_link",
    "external",
    "shared_externally",
    "public_on_the_web",
)
_CONTEXT_LABEL_KEYS = ("sensitivity", "sensitivity_label", "label", "classification")
_CONTEXT_EXPOSURE_KEYS = ("visibility", "exposure", "sharing", "link_type", "scope", "audience")


@dataclass(frozen=True)
class FindingSignal:
    id: int
    severity: str
    confidence: float
    provider: str | None
    title: str
    rule_id: str
    context: Mapping[str, Any]
    evidence: frozenset[int] = frozenset()
    kind: str = "detection"


@dataclass(frozen=True)
class PersonSignal:
    label: str
    is_admin: bool
    admin_roles: tuple[str, ...]


@dataclass(frozen=True)
class PriorityResult:
    priority: Priority
    score: float
    factors: dict[str, Any]


_WEIGHT_OF_NAME = {severity.value: weight for severity, weight in SEVERITY_WEIGHT.items()}


def severity_weight(severity: str) -> float:
    """Weight of a severity name; an unknown name counts as medium rather than failing the build."""
    if type(severity) is str:  # a plain name as read (an enum member hashes by its name)
        found = _WEIGHT_OF_NAME.get(severity)
        if found is not None:
            return found
    try:
        return SEVERITY_WEIGHT[Severity(severity)]
    except ValueError:
        return SEVERITY_WEIGHT[Severity.MEDIUM]


def _severity(findings: Sequence[FindingSignal]) -> tuple[float, dict[str, Any]]:
    top = max(findings, key=lambda f: (severity_weight(f.severity), f.confidence))
    weight = severity_weight(top.severity)
    return weight, {
        "weight": weight,
        "value": top.severity,
        "why": f"most severe finding #{top.id}: {top.title}",
    }


def independent_confidences(findings: Sequence[FindingSignal]) -> list[float]:
    """One confidence per piece of independent evidence: findings that cite the same events
    (a new country and a new network, both from one sign-in) are one observation, not two."""
    parent = list(range(len(findings)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[int, int] = {}
    for index, finding in enumerate(findings):
        for event_id in finding.evidence:
            if event_id in owner:
                parent[root(index)] = root(owner[event_id])
            else:
                owner[event_id] = index
    best: dict[int, float] = {}
    detected: set[int] = set()
    for index, finding in enumerate(findings):
        group = root(index)
        best[group] = max(best.get(group, 0.0), _belief(finding))
        if finding.kind != "anomaly":
            detected.add(group)
    # Anomalies are facets of one unusual behaviour (a trip shows as travel, a new country and new
    # networks): together they are one line of evidence; detections of acts each count.
    lines = [c for g, c in best.items() if g in detected]
    anomalies = [c for g, c in best.items() if g not in detected]
    if anomalies:
        lines.append(max(anomalies))
    return sorted(lines, reverse=True)


def _belief(finding: FindingSignal) -> float:
    """How much a finding says something bad happened; an anomaly says something unusual did."""
    confidence = min(1.0, max(0.0, finding.confidence))
    return round(confidence * ANOMALY_WEIGHT, 4) if finding.kind == "anomaly" else confidence


def _confidence(findings: Sequence[FindingSignal]) -> tuple[float, dict[str, Any]]:
    independent = independent_confidences(findings)
    doubt = 1.0
    for confidence in independent:
        doubt *= 1.0 - confidence
    weight = round(1.0 - doubt, 4)
    shown = ", ".join(f"{c:.2f}" for c in independent[:5]) + (" …" if len(independent) > 5 else "")
    if len(independent) == 1:
        why = f"confidence of the evidence ({shown})"
        if len(findings) > 1:
            why = f"{len(findings)} findings on the same evidence ({shown})"
    else:
        why = f"{len(independent)} independent lines of evidence corroborate each other ({shown})"
    if any(f.kind == "anomaly" for f in findings):
        why += f"; anomalies count ×{ANOMALY_WEIGHT} (unusual is not yet malicious)"
    return weight, {"weight": weight, "why": why}


def _privilege(people: Sequence[PersonSignal]) -> tuple[float, dict[str, Any]]:
    top = [(p, r) for p in people for r in p.admin_roles if r.lower() in TOP_ADMIN_ROLES]
    if top:
        person, role = top[0]
        return 1.6, {"weight": 1.6, "why": f"{person.label} holds {role}"}
    admins = [p for p in people if p.is_admin or p.admin_roles]
    if admins:
        roles = ", ".join(admins[0].admin_roles) or "an admin role"
        return 1.3, {"weight": 1.3, "why": f"{admins[0].label} holds {roles}"}
    why = "no administrator involved" if people else "no known person involved"
    return 1.0, {"weight": 1.0, "why": why}


def _context_values(context: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    values: list[str] = []
    for key, value in context.items():
        if str(key).lower() in keys:
            values.extend(str(v).lower() for v in (value if isinstance(value, list | tuple) else [value]))
    return values


def _assets(findings: Sequence[FindingSignal], files: Sequence[str]) -> tuple[float, dict[str, Any]]:
    reasons: list[str] = []
    sensitive = False
    for name in files:
        lowered = f" {name.lower()} "
        word = next((w for w in SENSITIVE_WORDS if w in lowered), None)
        if word:
            sensitive = True
            reasons.append(f"{name} looks sensitive ({word.strip()})")
            break
    labelled = next(
        (
            (f, v)
            for f in findings
            for v in _context_values(f.context, _CONTEXT_LABEL_KEYS)
            if any(label in v for label in SENSITIVE_LABELS)
        ),
        None,
    )
    if labelled:
        sensitive = True
        reasons.append(f"finding #{labelled[0].id} names a '{labelled[1]}' label")
    exposed = next(
        (
            (f, v)
            for f in findings
            for v in _context_values(f.context, _CONTEXT_EXPOSURE_KEYS)
            if v.replace(" ", "_") in EXPOSURE_VALUES
        ),
        None,
    )
    if exposed:
        reasons.append(f"exposed: {exposed[1]} (finding #{exposed[0].id})")
    else:
        titled = next(
            (
                f
                for f in findings
                if any(w in f"{f.title} {f.rule_id}".lower() for w in ("public", "external", "anyone"))
            ),
            None,
        )
        if titled:
            exposed = (titled, "title")
            reasons.append(f"exposed outside the organisation (finding #{titled.id}: {titled.title})")
    weight = min(1.5, (1.25 if sensitive else 1.0) * (1.2 if exposed else 1.0))
    return weight, {"weight": round(weight, 4), "why": "; ".join(reasons) or "no sensitive or exposed asset"}


def _spread(people: Sequence[PersonSignal], providers: Sequence[str]) -> tuple[float, dict[str, Any]]:
    extra_people = max(0, len(people) - 1)
    extra_providers = max(0, len(providers) - 1)
    weight = min(1.5, 1.0 + 0.1 * extra_people + 0.1 * extra_providers)
    named = ", ".join(sorted(providers)) or "no provider"
    count = f"{len(people)} {'person' if len(people) == 1 else 'people'}"
    return round(weight, 4), {
        "weight": round(weight, 4),
        "why": f"{count}, {len(providers)} provider{'' if len(providers) == 1 else 's'} ({named})",
        # who the incident is about, victims first (the broad sets of a spray are not counted)
        "people": [p.label for p in people][:MAX_NAMED_PEOPLE],
    }


def priority_for_score(score: float) -> Priority:
    for priority, threshold in THRESHOLDS:
        if score >= threshold:
            return priority
    return Priority.P4


def compute_priority(
    findings: Sequence[FindingSignal], people: Sequence[PersonSignal], files: Sequence[str]
) -> PriorityResult:
    """The priority of an incident made of `findings` involving `people` and `files`."""
    if not findings:
        return PriorityResult(Priority.P4, 0.0, {"score": 0.0, "formula": FORMULA, "factors": {}})
    providers = sorted({f.provider for f in findings if f.provider})
    parts = {
        "severity": _severity(findings),
        "confidence": _confidence(findings),
        "privilege": _privilege(people),
        "assets": _assets(findings, files),
        "spread": _spread(people, providers),
    }
    score = 1.0
    for weight, _ in parts.values():
        score *= weight
    score = round(score, 4)
    priority = priority_for_score(score)
    return PriorityResult(
        priority,
        score,
        {
            "score": score,
            "priority": priority.value,
            "formula": FORMULA,
            "thresholds": {p.value: t for p, t in THRESHOLDS},
            "factors": {name: detail for name, (_, detail) in parts.items()},
        },
    )
