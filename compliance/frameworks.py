"""Framework catalogues as data: one YAML file per framework under compliance/catalogues/ (ids and titles only).

Titles are short names from the public catalogues (or our paraphrase where the catalogue text is not free);
nothing else of the third-party text is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from compliance.errors import CatalogueError, UnknownFrameworkError
from core import loading

CATALOGUE_DIR = Path(__file__).resolve().parent / "catalogues"


class Framework(StrEnum):
    CIS_M365 = "cis-m365"
    CIS_GWS = "cis-gws"
    SCUBA_M365 = "scuba-m365"
    SCUBA_GWS = "scuba-gws"
    SOC2 = "soc2"
    ISO27001 = "iso27001"
    NIST_800_53 = "nist-800-53"


_FILES = {
    Framework.CIS_M365: "cis-m365.yml",
    Framework.CIS_GWS: "cis-gws.yml",
    Framework.SCUBA_M365: "scuba-m365.yml",
    Framework.SCUBA_GWS: "scuba-gws.yml",
    Framework.SOC2: "soc2-tsc.yml",
    Framework.ISO27001: "iso27001-2022.yml",
    Framework.NIST_800_53: "nist-800-53r5.yml",
}
# Providers a framework speaks about (None: every provider). A report for CIS M365 leaves Slack out.
PROVIDERS: dict[Framework, frozenset[str] | None] = {
    Framework.CIS_M365: frozenset({"m365"}),
    Framework.CIS_GWS: frozenset({"google"}),
    Framework.SCUBA_M365: frozenset({"m365"}),
    Framework.SCUBA_GWS: frozenset({"google"}),
    Framework.SOC2: None,
    Framework.ISO27001: None,
    Framework.NIST_800_53: None,
}


@dataclass(frozen=True)
class Control:
    id: str
    title: str


@dataclass(frozen=True)
class Catalogue:
    framework: Framework
    name: str
    version: str
    source: str
    controls: tuple[Control, ...]
    by_id: dict[str, Control] = field(default_factory=dict, repr=False, compare=False)

    def get(self, control_id: str) -> Control | None:
        return self.by_id.get(control_id)


def parse_framework(name: str) -> Framework:
    """The framework called `name` (case-insensitive), or an error listing the ones there are."""
    try:
        return Framework(name.strip().lower())
    except ValueError:
        known = ", ".join(f.value for f in Framework)
        raise UnknownFrameworkError(f"unknown framework {name!r}: use one of {known}") from None


@cache
def load_catalogue(framework: Framework) -> Catalogue:
    path = CATALOGUE_DIR / _FILES[framework]
    try:
        data = loading.load_path(path, kind="yaml").data
    except loading.LoadError as exc:
        raise CatalogueError(str(exc)) from None
    if not isinstance(data, dict) or data.get("framework") != framework.value:
        raise CatalogueError(f"{path}: `framework` must be {framework.value!r}")
    controls: list[Control] = []
    seen: set[str] = set()
    for position, entry in enumerate(data.get("controls") or (), start=1):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("title"):
            raise CatalogueError(f"{path}: control #{position} needs an id and a title")
        control_id = str(entry["id"])
        if control_id in seen:
            raise CatalogueError(f"{path}: control {control_id!r} is listed twice")
        seen.add(control_id)
        controls.append(Control(control_id, str(entry["title"])))
    return Catalogue(
        framework=framework,
        name=str(data.get("name", framework.value)),
        version=str(data.get("version", "")),
        source=str(data.get("source", "")),
        controls=tuple(controls),
        by_id={c.id: c for c in controls},
    )
