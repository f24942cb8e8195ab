"""Control mappings: every id exists in its catalogue, every shipped check and rule is mapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.errors import CatalogueError, UnknownFrameworkError
from compliance.frameworks import Framework, load_catalogue, parse_framework
from compliance.mappings import (
    DETECTION_MAPPINGS,
    POSTURE_MAPPINGS,
    ItemKind,
    load_mappings,
    shipped_mappings,
    stale,
    unmapped,
)
from detectors.posture.checks import load_checks
from detectors.sigma.loader import load_pack

RULES = Path(__file__).resolve().parents[2] / "rules"


def _rule_ids() -> list[str]:
    pack = load_pack([RULES / "detections"])
    assert not pack.problems
    return [r.rule_id for r in [*pack.rules, *pack.correlations]]


@pytest.mark.parametrize("framework", list(Framework))
def test_every_catalogue_loads_with_unique_ids_and_titles(framework: Framework) -> None:
    catalogue = load_catalogue(framework)
    assert catalogue.controls, framework
    assert catalogue.source
    assert all(c.title and len(c.title) <= 160 for c in catalogue.controls)


def test_every_mapped_control_exists_in_its_catalogue() -> None:
    mappings = shipped_mappings()
    for mapping in mappings.items.values():
        for framework, ids in mapping.controls.items():
            catalogue = load_catalogue(framework)
            assert [i for i in ids if catalogue.get(i) is None] == [], (mapping.item_id, framework)


def test_every_posture_check_is_mapped_and_no_mapping_is_stale() -> None:
    ids = [c.id for c in load_checks()]
    mappings = shipped_mappings()
    assert unmapped(mappings, ItemKind.POSTURE_CHECK, ids) == []
    assert stale(mappings, ItemKind.POSTURE_CHECK, ids) == []
    for check_id in ids:
        mapping = mappings.for_item(ItemKind.POSTURE_CHECK, check_id)
        assert mapping is not None and (mapping.controls or mapping.reason)


def test_every_detection_rule_is_mapped_and_no_mapping_is_stale() -> None:
    ids = _rule_ids()
    mappings = shipped_mappings()
    assert unmapped(mappings, ItemKind.DETECTION_RULE, ids) == []
    assert stale(mappings, ItemKind.DETECTION_RULE, ids) == []
    # the benchmarks have no detection controls: said once, with the reason
    for framework in (Framework.CIS_M365, Framework.CIS_GWS, Framework.SCUBA_M365, Framework.SCUBA_GWS):
        assert mappings.not_applicable[(ItemKind.DETECTION_RULE, framework)]


def test_scuba_references_a_check_cites_are_in_its_mapping() -> None:
    mappings = shipped_mappings()
    for check in load_checks():
        mapping = mappings.for_item(ItemKind.POSTURE_CHECK, check.id)
        assert mapping is not None
        for ref in check.references:
            framework = {"MS.": Framework.SCUBA_M365, "GWS.": Framework.SCUBA_GWS}.get(
                ref[: ref.find(".") + 1]
            )
            if framework is not None and load_catalogue(framework).get(ref):
                assert ref in mapping.controls.get(framework, ()), (check.id, ref)


def test_every_framework_has_posture_checks_mapped() -> None:
    mappings = shipped_mappings()
    for framework in Framework:
        assert mappings.items_by_control(framework), framework


def test_an_unknown_control_id_is_refused_naming_file_item_and_id(tmp_path: Path) -> None:
    bad = tmp_path / "controls.yml"
    bad.write_text("checks:\n  m365.mfa_admins:\n    nist-800-53: [IA-2, XX-99]\n", encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_mappings(bad, DETECTION_MAPPINGS)
    assert (
        "m365.mfa_admins" in str(caught.value)
        and "XX-99" in str(caught.value)
        and str(bad) in str(caught.value)
    )


def test_an_entry_without_controls_or_reason_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "controls.yml"
    bad.write_text("checks:\n  m365.mfa_admins: {}\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="reason"):
        load_mappings(bad, DETECTION_MAPPINGS)
    ok = tmp_path / "ok.yml"
    ok.write_text(
        "checks:\n  m365.mfa_admins: {reason: covered by the tenant's own control}\n", encoding="utf-8"
    )
    assert load_mappings(ok, DETECTION_MAPPINGS).for_item(ItemKind.POSTURE_CHECK, "m365.mfa_admins")


def test_unknown_framework_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UnknownFrameworkError, match="soc2"):
        parse_framework("pci")
    assert parse_framework("SOC2") is Framework.SOC2
    bad = tmp_path / "controls.yml"
    bad.write_text("checks:\n  m365.mfa_admins:\n    pci: [1.1]\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="unknown framework 'pci'"):
        load_mappings(bad, POSTURE_MAPPINGS)
