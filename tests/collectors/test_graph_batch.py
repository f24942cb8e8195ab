"""Graph JSON batching: per-user inventory reads (inbox rules, OneDrive permissions) folded 20 to a
`POST $batch`, each answered as if sent alone; throttled answers inside a batch asked again alone,
so the snapshot is the same item for item; a batch Graph would refuse is refused."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from collectors import collect_once, connections_from_simulator
from collectors.connections import sync_connections
from collectors.options import CollectorOptions
from core.db import Database
from core.models import ConfigSnapshot, Connection
from core.settings import Settings
from providers.credentials import Secrets
from providers.m365 import BATCH_REQUESTS, m365_clients

OPTIONS = CollectorOptions(threads=1, backoff_base=0.01, backoff_max=0.05)
FULL = CollectorOptions(
    threads=1, backoff_base=0.01, backoff_max=0.05, reconcile_hours=1e-9
)  # every user again
STREAMS = {"m365": ["inbox_rules", "file_permissions"]}
USERS = 45  # three batches of inbox rules: 20 + 20 + 5


def _graph(db: Database) -> Any:
    with db.session(readonly=True) as s:
        m365 = s.exec(select(Connection).where(Connection.provider == "m365")).one()
    return m365_clients(m365, Secrets(m365.secret_refs))


def _read(
    db: Database, settings: Settings, sim: Any, options: CollectorOptions
) -> dict[tuple[str, str], dict[str, Any]]:
    sync_connections(
        db, connections_from_simulator(sim.info, providers=("m365",), streams=STREAMS), source="simulator"
    )
    report = collect_once(db, settings, options=options)
    assert report.ok, report.failures
    with db.session(readonly=True) as s:
        rows = s.exec(select(ConfigSnapshot).where(ConfigSnapshot.provider == "m365")).all()
        return {(r.object_type, r.object_id): r.data for r in rows}


def _graph_requests(sim: Any, path_part: str) -> list[dict[str, Any]]:
    return [r for r in sim.sim.requests if r["path"].startswith("/graph/") and path_part in r["path"]]


def test_a_batch_answers_each_request_as_if_it_were_sent_alone(
    db: Database, settings: Settings, past_simulator
) -> None:
    sim = past_simulator(users=USERS)
    sync_connections(
        db, connections_from_simulator(sim.info, providers=("m365",), streams=STREAMS), source="simulator"
    )
    graph = _graph(db)
    users = graph.graph.get(f"{graph.graph_base_url}/users", params={"$top": "3"}).json()["value"]
    paths = [f"/users/{u['userPrincipalName']}/mailFolders/inbox/messageRules" for u in users]
    paths.append("/users/nobody@nowhere.test/mailFolders/inbox/messageRules")
    # when the reads go in one batch, ids of any case
    requests = [{"id": f"R{i}", "method": "GET", "url": p} for i, p in enumerate(paths)]
    answer = graph.graph.post(f"{graph.graph_base_url}/$batch", json={"requests": requests})
    # then each answer is the one the request gets alone, 404 for a user that does not exist
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    for i, path in enumerate(paths):
        alone = graph.graph.get(graph.graph_base_url + path)
        assert by_id[f"R{i}"]["status"] == alone.status_code
        if alone.ok:
            assert by_id[f"R{i}"]["body"] == alone.json()
        else:  # the same error (each answer names its own request id)
            assert by_id[f"R{i}"]["body"]["error"]["code"] == alone.json()["error"]["code"]
    assert by_id[f"R{len(paths) - 1}"]["status"] == 404
    # and a batch Graph refuses is refused whole: too many requests, an id twice, a request without url
    too_many = [{"id": str(i), "method": "GET", "url": paths[0]} for i in range(BATCH_REQUESTS + 1)]
    twice = [{"id": "a", "method": "GET", "url": paths[0]}, {"id": "A", "method": "GET", "url": paths[1]}]
    for bad in (too_many, twice, [{"id": "1", "method": "GET"}]):
        refused = graph.graph.post(f"{graph.graph_base_url}/$batch", json={"requests": bad})
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "BadRequest"


def test_per_user_reads_go_twenty_to_a_batch_and_throttled_ones_alone_with_the_same_snapshot(
    db: Database, settings: Settings, past_simulator
) -> None:
    # given a tenant read once with no faults
    quiet = past_simulator(users=USERS)
    expected = _read(db, settings, quiet, OPTIONS)
    rules = [k for k in expected if k[0] == "inbox_rule"]
    assert rules and [k for k in expected if k[0] == "file_permission"]
    # then every mailbox's rules were read inside a batch, 20 mailboxes to one
    reads = [r for r in _graph_requests(quiet, "/messageRules") if r["method"] == "GET"]
    assert len(reads) == USERS and all(r["batch"] for r in reads)
    assert len({r["batch"] for r in reads}) == -(-USERS // BATCH_REQUESTS)
    # when the same tenant is read again in full, from a copy of it that throttles a third of the
    # per-user reads inside their batches
    noisy = past_simulator(users=USERS, faults="429=0.3@m365:inbox_rules,429=0.3@m365:drive,seed=3")
    rows = _count(db)
    again = _read(db, settings, noisy, FULL)
    # then the throttled reads were asked again alone, and nothing changed: no item lost, none new
    reads = _graph_requests(noisy, "/messageRules")
    throttled = {r["path"] for r in reads if r["status"] == 429 and r["batch"]}
    assert throttled
    assert throttled == {r["path"] for r in reads if not r["batch"] and r["status"] == 200}
    assert again == expected
    with db.session(readonly=True) as session:
        new = session.exec(select(ConfigSnapshot).where(ConfigSnapshot.id > rows)).all()
    assert [(r.object_type, r.object_id, r.data) for r in new] == []


def _count(db: Database) -> int:
    with db.session(readonly=True) as s:
        return len(s.exec(select(ConfigSnapshot.id)).all())
