"""Control mappings as data next to the checks and rules: rules/posture/controls.yml, rules/detections/controls.yml.

Each maps a posture check id (or detection rule id) to framework -> control ids. A check or rule with
nothing to map says why (`reason:`); a framework that has nothing for a whole kind of item says so once
under `not_applicable:`. Loading validates every id against its framework's catalogue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from compliance.errors import CatalogueError
from compliance.frameworks import Framework, load_catalogue
from core import loading

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
POSTURE_MAPPINGS = RULES_DIR / "posture" / "controls.yml"
DETECTION_MAPPINGS = RULES_DIR / "detections" / "controls.yml"


class ItemKind(StrEnum):
    POSTURE_CHECK = "posture_check"
    DETECTION_RULE = "detection_rule"


@dataclass(frozen=True)
class ItemMapping:
    """The controls one check or rule bears on, per framework (or why it bears on none)."""

    kind: ItemKind
    item_id: str
    controls: dict[Framework, tuple[str, ...]]
    reason: str = ""


@dataclass(frozen=True)
class MappingSet:
    items: dict[tuple[ItemKind, str], ItemMapping]
    not_applicable: dict[tuple[ItemKind, Framework], str] = field(default_factory=dict)

    def for_item(self, kind: ItemKind, item_id: str) -> ItemMapping | None:
        return self.items.get((kind, item_id))

    def items_by_control(self, framework: Framework) -> dict[str, list[ItemMapping]]:
        """control id -> the checks and rules mapped to it."""
        out: dict[str, list[ItemMapping]] = defaultdict(list)
        for mapping in self.items.values():
            for control_id in mapping.controls.get(framework, ()):
                out[control_id].append(mapping)
        return dict(out)


def _parse_file(path: Path, kind: ItemKind, key: str) -> tuple[list[ItemMapping], dict[Framework, str]]:
    try:
        data = loading.load_path(path, kind="yaml").data or {}
    except loading.LoadError as exc:
        raise CatalogueError(str(exc)) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise CatalogueError(f"{path}: expected a `{key}:` mapping of id -> framework -> control ids")
    not_applicable: dict[Framework, str] = {}
    for name, why in (data.get("not_applicable") or {}).items():
        not_applicable[_framework(path, name, "not_applicable")] = str(why)
    mappings = []
    for item_id, entry in data[key].items():
        if not isinstance(entry, dict):
            raise CatalogueError(f"{path}: {item_id}: expected framework -> [control ids] (or `reason:`)")
        reason = str(entry.get("reason") or "")
        controls: dict[Framework, tuple[str, ...]] = {}
        for name, ids in entry.items():
            if name == "reason":
                continue
            framework = _framework(path, name, str(item_id))
            if not isinstance(ids, list) or not ids:
                raise CatalogueError(f"{path}: {item_id}: {name} must be a non-empty list of control ids")
            catalogue = load_catalogue(framework)
            for control_id in ids:
                if catalogue.get(str(control_id)) is None:
                    raise CatalogueError(
                        f"{path}: {item_id}: {framework.value} has no control {control_id!r} "
                        f"(see compliance/catalogues/ for the ids it has)"
                    )
            controls[framework] = tuple(str(c) for c in ids)
        if not controls and not reason:
            raise CatalogueError(f"{path}: {item_id}: map it to at least one control or give a `reason:`")
        mappings.append(ItemMapping(kind, str(item_id), controls, reason))
    return mappings, not_applicable


def _framework(path: Path, name: str, where: str) -> Framework:
    try:
        return Framework(name)
    except ValueError:
        known = ", ".join(f.value for f in Framework)
        raise CatalogueError(f"{path}: {where}: unknown framework {name!r} (known: {known})") from None


def load_mappings(posture: Path = POSTURE_MAPPINGS, detections: Path = DETECTION_MAPPINGS) -> MappingSet:
    items: dict[tuple[ItemKind, str], ItemMapping] = {}
    not_applicable: dict[tuple[ItemKind, Framework], str] = {}
    for path, kind, key in (
        (posture, ItemKind.POSTURE_CHECK, "checks"),
        (detections, ItemKind.DETECTION_RULE, "rules"),
    ):
        mappings, na = _parse_file(path, kind, key)
        for mapping in mappings:
            items[(kind, mapping.item_id)] = mapping
        not_applicable.update({(kind, framework): why for framework, why in na.items()})
    return MappingSet(items, not_applicable)


@cache
def shipped_mappings() -> MappingSet:
    return load_mappings()


def unmapped(mappings: MappingSet, kind: ItemKind, item_ids: Iterable[str]) -> list[str]:
    """Ids with no entry at all (neither a control nor a reason): what the coverage test refuses."""
    return sorted(i for i in item_ids if mappings.for_item(kind, i) is None)


def stale(mappings: MappingSet, kind: ItemKind, item_ids: Iterable[str]) -> list[str]:
    """Mapped ids that no shipped check or rule has any more (a rename left its mapping behind)."""
    known = set(item_ids)
    return sorted(i for (k, i) in mappings.items if k is kind and i not in known)
