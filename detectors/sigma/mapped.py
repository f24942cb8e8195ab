"""A rule as the processing pipelines mapped it, written back as Sigma YAML in the stored shape.

`tenantguard rules convert -t tenantguard` prints it: a SigmaHQ rule written for Log Analytics
columns (`ResultType`, `OperationName`) comes out with the Graph, Management Activity or Reports
API field names it is evaluated on, under our own logsource, so a detection engineer sees what
the rule really reads and can keep the result as a rule of their own.

pySigma's `SigmaRule.to_dict()` does not do this: a field mapped onto two fields becomes a nested
OR inside a selection, and to_dict writes the nested detections as a list of mappings, which
Sigma reads as something else. Here each named detection is brought to an OR of ANDs (a list of
mappings, each mapping's keys ANDed), which Sigma expresses exactly; a detection that cannot be
written that way (too many alternatives, the same field twice in one mapping, keywords mixed with
fields) is refused with the reason, never written wrong.
"""

from __future__ import annotations

from typing import Any

from sigma.conditions import ConditionOR
from sigma.rule import SigmaDetection, SigmaDetectionItem
from sigma.types import SigmaCIDRExpression, SigmaRegularExpression

MAX_ALTERNATIVES = 64
_WILDCARD_MODIFIERS = {"contains": (True, True), "startswith": (False, True), "endswith": (True, False)}


class NotExpressible(ValueError):
    """A mapped detection that one Sigma detection cannot state exactly."""


def _alternatives(node: SigmaDetection | SigmaDetectionItem) -> list[list[SigmaDetectionItem]]:
    """The detection as an OR of ANDs of items."""
    if isinstance(node, SigmaDetectionItem):
        return [[node]]
    parts = [_alternatives(child) for child in node.detection_items]
    if node.item_linking is ConditionOR:
        out = [conj for part in parts for conj in part]
    else:
        out = [[]]
        for part in parts:
            out = [a + b for a in out for b in part]
            if len(out) > MAX_ALTERNATIVES:
                break
    if len(out) > MAX_ALTERNATIVES:
        raise NotExpressible(f"more than {MAX_ALTERNATIVES} alternatives after mapping")
    return out


def _unwild(value: Any, modifiers: list[str]) -> Any:
    """pySigma writes the wildcards a contains/startswith/endswith added back into the value; the
    modifier adds them again when the rule is read, so take them off."""
    for modifier, (head, tail) in _WILDCARD_MODIFIERS.items():
        if modifier in modifiers and isinstance(value, str):
            if head and value.startswith("*"):
                value = value[1:]
            if tail and value.endswith("*") and not value.endswith("\\*"):
                value = value[:-1]
    return value


def _plain(item: SigmaDetectionItem) -> tuple[str | None, Any]:
    plain = item.to_plain()
    if item.field is None:
        return None, plain
    if not isinstance(plain, dict) or len(plain) != 1:
        raise NotExpressible(f"{item.field}: pySigma cannot write the mapped item")
    [(key, value)] = plain.items()
    modifiers = key.split("|")[1:]
    # a value a pipeline turned into a regular expression or a network keeps no modifier saying so
    kinds = {type(v) for v in item.value}
    for kind, modifier in ((SigmaRegularExpression, "re"), (SigmaCIDRExpression, "cidr")):
        if kinds == {kind} and modifier not in modifiers:
            modifiers.append(modifier)
            key = f"{key}|{modifier}"
        elif kind in kinds and modifier not in modifiers:
            raise NotExpressible(f"{item.field}: {modifier} and plain values mixed after mapping")
    if isinstance(value, list):
        value = [_unwild(v, modifiers) for v in value]
    else:
        value = _unwild(value, modifiers)
    return key, value


def detection_doc(detection: SigmaDetection) -> Any:
    """One named detection as Sigma YAML data: a mapping, a list of mappings, or keywords."""
    alternatives = _alternatives(detection)
    keyed = [[_plain(item) for item in conj] for conj in alternatives]
    if all(key is None for conj in keyed for key, _ in conj):
        if any(len(conj) != 1 for conj in keyed):
            raise NotExpressible("keywords ANDed together")
        values: list[Any] = []
        for [(_, value)] in keyed:
            values.extend(value if isinstance(value, list) else [value])
        return values
    mappings: list[dict[str, Any]] = []
    for conj in keyed:
        mapping: dict[str, Any] = {}
        for key, value in conj:
            if key is None:
                raise NotExpressible("keywords ANDed with fields")
            if key in mapping:
                raise NotExpressible(f"{key} twice in one selection after mapping")
            mapping[key] = value
        mappings.append(mapping)
    return mappings[0] if len(mappings) == 1 else mappings


def mapped_detection(rule: Any) -> dict[str, Any]:
    """The `detection:` block of a pySigma rule after the pipelines (conditions unchanged)."""
    out: dict[str, Any] = {
        name: detection_doc(detection) for name, detection in rule.detection.detections.items()
    }
    conditions = rule.detection.condition
    out["condition"] = conditions[0] if len(conditions) == 1 else list(conditions)
    return out
