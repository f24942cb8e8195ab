"""Findings and incidents of different tenants never merge: one IP spraying two organisations is
two findings (the dedup key names the tenant) and two incidents, while the default tenant's keys
stay exactly as they were stored before tenants."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core.db import Database
from core.findings import tenant_key
from core.models import Incident
from core.settings import Settings
from detectors.pipeline import detect_new
from tests.pipeline.test_partitions import CONTOSO, NORTHWIND, T0, _connection, _spray, _sprays
from timeline.build import build_incidents

IP = "185.220.101.34"


def test_one_ip_spraying_two_tenants_is_two_findings(db: Database, settings: Settings) -> None:
    # given two tenants sprayed at the same time from the same IP
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    north_ids = _spray(db, a, range(12), T0, "northwind.example", ip=IP)
    contoso_ids = _spray(db, b, range(12), T0, "contoso.example", ip=IP)
    # when detection runs over every partition
    assert detect_new(db, settings, with_anomaly=False).events == 24
    # then each tenant has its own finding, holding only its own evidence, keyed by its tenant
    north, contoso = sorted(_sprays(db), key=lambda f: f.evidence_event_ids[0])
    assert sorted(north.evidence_event_ids) == north_ids
    assert sorted(contoso.evidence_event_ids) == contoso_ids
    assert north.dedup_key.startswith(tenant_key(NORTHWIND, ""))
    assert contoso.dedup_key == tenant_key(CONTOSO, north.dedup_key.split("|", 1)[1])


def test_the_default_tenant_keeps_the_keys_stored_before_tenants(db: Database, settings: Settings) -> None:
    # given a connection without an organisation (a single-tenant deployment)
    plain = _connection(db, "acme-entra", None)
    _spray(db, plain, range(12), T0, "acme.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    # then its key is the untenanted key, so an upgraded installation continues its open findings
    (finding,) = _sprays(db)
    assert tenant_key("", finding.dedup_key) == finding.dedup_key
    assert not finding.dedup_key.startswith("tenant:")


def test_findings_of_two_tenants_sharing_an_ip_are_two_incidents(db: Database, settings: Settings) -> None:
    # given one IP spraying two tenants, detected as two findings
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    _spray(db, a, range(12), T0, "northwind.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    build_incidents(db, settings, now=T0.replace(hour=4), notify=False)
    # and the second tenant's spray found after the first's incident exists
    _spray(db, b, range(12), T0 + timedelta(minutes=10), "contoso.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    # when incidents are built again, and again over both in one build
    build_incidents(db, settings, now=T0.replace(hour=4), notify=False)
    # then each tenant's finding is its own incident: nothing groups across tenants by the IP
    findings = _sprays(db)
    assert len(findings) == 2
    assert None not in {f.incident_id for f in findings}
    assert len({f.incident_id for f in findings}) == 2
    with db.session(readonly=True) as session:
        assert len(session.exec(select(Incident)).all()) == 2


def test_two_tenants_sprayed_together_are_two_incidents_in_one_build(
    db: Database, settings: Settings
) -> None:
    a = _connection(db, "northwind-entra", NORTHWIND)
    b = _connection(db, "contoso-entra", CONTOSO)
    _spray(db, a, range(12), T0, "northwind.example", ip=IP)
    _spray(db, b, range(12), T0, "contoso.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    build_incidents(db, settings, now=T0.replace(hour=4), notify=False)
    findings = _sprays(db)
    assert len(findings) == 2 and len({f.incident_id for f in findings} - {None}) == 2
