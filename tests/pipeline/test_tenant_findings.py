"""Findings and incidents of different tenants never merge: one IP spraying two organisations is
two findings (the dedup key names the tenant) and two incidents, while the default tenant's keys
stay exactly as they were stored before tenants; and two tenants read by one partition's engine
never share a correlation window."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from core.db import Database
from core.findings import tenant_key
from core.models import Event, Incident
from core.settings import Settings
from detectors.partitions import partition_of
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


def test_two_tenants_of_one_partition_never_add_up_to_a_spray(db: Database, settings: Settings) -> None:
    # given two tenants that hash into the same detection partition, so one engine reads both
    fabrikam, fourthcoffee = "fabrikam", "fourthcoffee"
    assert partition_of(fabrikam, settings.pipeline_partitions) == partition_of(
        fourthcoffee, settings.pipeline_partitions
    )
    a = _connection(db, "fabrikam-entra", fabrikam)
    b = _connection(db, "fourthcoffee-entra", fourthcoffee)
    # when one IP fails the passwords of 6 accounts in each (a spray needs 10 in 30 minutes)
    _spray(db, a, range(6), T0, "fabrikam.example", ip=IP)
    _spray(db, b, range(6), T0 + timedelta(seconds=15), "fourthcoffee.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    # then no tenant saw a spray: the 12 accounts are never counted in one window
    assert _sprays(db) == []
    # and when the first tenant's spray goes on to 12 accounts, its finding holds its events alone
    more = _spray(db, a, range(6, 12), T0 + timedelta(minutes=3), "fabrikam.example", ip=IP)
    detect_new(db, settings, with_anomaly=False)
    (finding,) = _sprays(db)
    assert finding.dedup_key.startswith(tenant_key(fabrikam, ""))
    with db.session(readonly=True) as session:
        connections = set(
            session.exec(select(Event.connection_id).where(col(Event.id).in_(finding.evidence_event_ids)))
        )
    assert connections == {a} and set(more) <= set(finding.evidence_event_ids)
