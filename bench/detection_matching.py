"""Detection matching throughput: the rule index vs trying every rule vs pySigma's SQLite backend.

Same events, same rules, one core, medians of 5 runs:

* **batch** — the engine as it runs: 5,000-event batches, each stream's events matched
  column-wise (`RuleIndex.match_batch`, detectors.sigma.batch): fields extracted once per batch,
  rows grouped by the indexed field's value, each candidate rule's condition as list
  comprehensions over the rows that value selects;
* **indexed** — one event at a time: one case-insensitive view per event, the rule index's
  candidates, their compiled predicates (`RuleIndex.match`);
* **naive** — the same compiled predicates, every rule's logsource and condition on every event;
* **pySigma SQLite** — the same rules converted by ``pysigma-backend-sqlite`` to one SQL query
  each, run over the same events loaded into one SQLite table per stream (load time reported
  apart; the ratio is against query time only, which favours SQLite);
* **engine** — matching plus correlations, dedup/threshold and suppression bookkeeping;
* correlation state memory per 1,000,000 distinct group keys (tracemalloc).

Two packs: the shipped pack (rules/detections) and a synthetic 300-rule pack written as Sigma
YAML and loaded through the same loader. Events: provider-shaped records (bench.limits) plus
unified-audit records and a sprinkle of the pack's own positive test events, so rules do match.

Run: ``python -m bench detection_matching`` or ``python -m bench.detection_matching [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sqlite3
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Figure, Stats, print_table, repeat
from bench.limits import sample_events
from core.normalise import with_event_identity
from detectors.pipeline import default_rules_path
from detectors.sigma.correlation import CorrelationState
from detectors.sigma.definitions import CompiledCorrelation, CompiledRule, CorrelationType, RulePack
from detectors.sigma.engine import DetectionEngine
from detectors.sigma.events import EventRecord, EventView, make_records
from detectors.sigma.index import RuleIndex, naive_match
from detectors.sigma.loader import load_pack

AREA = "detection"
RUNS = 5


def cpu_rate(work: Any) -> Any:
    """Items per CPU-second of this process (one thread): robust when other jobs share the machine."""

    def measure() -> float:
        gc.collect()
        start = time.process_time()
        count = work()
        return count / max(time.process_time() - start, 1e-9)

    return measure


def rate(work: Any) -> Any:
    return cpu_rate(work)


def wall_rate(work: Any) -> Any:
    """Items per wall-clock second (what a user waits for; pessimistic on a shared machine)."""

    def measure() -> float:
        gc.collect()
        start = time.perf_counter()
        count = work()
        return count / max(time.perf_counter() - start, 1e-9)

    return measure


def paired(first: Any, second: Any, runs: int = RUNS) -> tuple[Stats, Stats]:
    """Two measurements taken in alternation, so that a change in the machine's load hits both."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return _stats(a), _stats(b)


def _stats(values: list[float]) -> Stats:
    return Stats(statistics.median(values), min(values), max(values), len(values))


# --- events ----------------------------------------------------------------------------------------

_OPERATIONS = (
    "FileAccessed",
    "FileModified",
    "FileDownloaded",
    "FileUploaded",
    "FilePreviewed",
    "UserLoggedIn",
    "Send",
    "MailItemsAccessed",
)


def _unified_audit(rng: random.Random, at: datetime, user: str) -> dict[str, Any]:
    operation = rng.choices(_OPERATIONS, weights=(40, 15, 8, 5, 5, 15, 7, 5))[0]
    doc = f"doc{rng.randrange(5000)}.docx"
    return {
        "CreationTime": at.strftime("%Y-%m-%dT%H:%M:%S"),
        "Id": str(uuid.UUID(int=rng.getrandbits(128))),
        "Operation": operation,
        "OrganizationId": "5b1d0c1e-0000-4000-8000-000000000001",
        "RecordType": 6,
        "ResultStatus": "Succeeded",
        "UserKey": f"i:0h.f|membership|{user}",
        "UserType": 0,
        "Version": 1,
        "Workload": "SharePoint",
        "ClientIP": f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "ObjectId": f"https://contoso.sharepoint.com/sites/team/Shared Documents/{doc}",
        "UserId": user,
        "SiteUrl": "https://contoso.sharepoint.com/sites/team/",
        "SourceFileName": doc,
        "SourceFileExtension": "docx",
        "UserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0",
    }


def bench_events(count: int, pack: RulePack, seed: int = 11) -> list[EventRecord]:
    """`count` events: 85 % provider-shaped background, 13 % unified audit, 2 % the pack's own test events."""
    rng = random.Random(seed)
    records: list[EventRecord] = []
    background = sample_events(int(count * 0.85), seed=seed)
    for number, (raw, row) in enumerate(background):
        records.extend(
            make_records(row.provider, row.stream, raw, event_id=number, ts=row.occurred_at.timestamp())
        )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for _ in range(int(count * 0.13)):
        at = start + timedelta(seconds=rng.randrange(7 * 86400))
        raw = _unified_audit(rng, at, f"user{rng.randrange(1000)}@contoso.example")
        records.extend(make_records("m365", "unified_audit", raw, event_id=len(records), ts=at.timestamp()))
    samples = [e for item in pack.items() for t in item.tests if t.expect_match for e in t.events]
    while len(records) < count and samples:
        event = rng.choice(samples)
        at = start + timedelta(seconds=rng.randrange(7 * 86400))
        stamped = with_event_identity(
            event.provider, event.stream, event.data, event_id=f"t{len(records)}", at=at
        )
        records.extend(
            make_records(event.provider, event.stream, stamped, event_id=len(records), ts=at.timestamp())
        )
    records = records[:count]
    records.sort(key=lambda r: r.ts)
    return records


# --- a synthetic 300-rule pack ---------------------------------------------------------------------------

_VOCAB: dict[tuple[str, str], tuple[str, list[Any]]] = {
    ("m365", "signins"): (
        "status.errorCode",
        [
            50126,
            50053,
            50055,
            50057,
            50074,
            50076,
            50079,
            50125,
            50140,
            50158,
            53003,
            530032,
            500121,
            65001,
            70044,
            700016,
            50034,
            50097,
            50105,
            50011,
            90072,
            81010,
            16000,
            7000218,
            50072,
        ],
    ),
    ("m365", "directory_audits"): (
        "activityDisplayName",
        [
            "Update user",
            "Add member to group",
            "Reset password",
            "Add user",
            "Delete user",
            "Add member to role",
            "Consent to application",
            "Add service principal",
            "Update application",
            "Add owner to application",
            "Update conditional access policy",
            "Delete conditional access policy",
            "Add policy",
            "Update policy",
            "Invite external user",
            "Disable account",
            "Enable account",
            "Set domain authentication",
            "Add partner to company",
            "User registered security info",
            "User deleted security info",
            "Change user password",
            "Update group",
            "Add group",
            "Delete group",
            "Restore user",
        ],
    ),
    ("m365", "unified_audit"): (
        "Operation",
        [
            "FileDownloaded",
            "FileDeleted",
            "FileRecycled",
            "New-InboxRule",
            "Set-InboxRule",
            "Set-Mailbox",
            "Add-MailboxPermission",
            "New-TransportRule",
            "AnonymousLinkCreated",
            "SharingSet",
            "SharingInvitationCreated",
            "MailItemsAccessed",
            "Send",
            "SearchQueryPerformed",
            "FileSyncDownloadedFull",
            "Set-AdminAuditLogConfig",
            "Remove-DlpCompliancePolicy",
            "New-ComplianceSearchAction",
            "UserLoggedIn",
            "FileAccessed",
            "FileModified",
            "FilePreviewed",
            "PageViewed",
            "ListItemCreated",
            "FolderCreated",
            "UpdateInboxRules",
            "HardDelete",
            "SoftDelete",
        ],
    ),
    ("google", "login"): (
        "name",
        [
            "login_success",
            "login_failure",
            "logout",
            "suspicious_login",
            "login_challenge",
            "gov_attack_warning",
        ],
    ),
    ("google", "drive"): (
        "name",
        [
            "view",
            "download",
            "change_user_access",
            "edit",
            "trash",
            "delete",
            "change_document_visibility",
            "create",
            "rename",
            "copy",
        ],
    ),
    ("google", "token"): ("name", ["authorize", "revoke", "request"]),
    ("google", "admin"): (
        "name",
        [
            "ASSIGN_ROLE",
            "CREATE_USER",
            "CHANGE_PASSWORD",
            "CHANGE_APPLICATION_SETTING",
            "AUTHORIZE_API_CLIENT_ACCESS",
            "ADD_GROUP_MEMBER",
            "DELETE_USER",
            "SUSPEND_USER",
        ],
    ),
    ("slack", "audit"): (
        "action",
        [
            "user_login",
            "user_login_failed",
            "file_downloaded",
            "file_shared",
            "user_logout",
            "app_installed",
            "app_scopes_expanded",
            "file_public_link_created",
            "anomaly",
            "role_change_to_admin",
            "manual_export_started",
            "user_created",
            "user_deactivated",
            "channel_created",
            "public_channel_created",
            "private_channel_created",
            "user_email_updated",
            "pref.sso_setting_changed",
            "pref.two_factor_auth_changed",
            "guest_created",
        ],
    ),
}
_STREAM_WEIGHTS = {
    ("m365", "signins"): 22,
    ("m365", "directory_audits"): 12,
    ("m365", "unified_audit"): 20,
    ("google", "login"): 8,
    ("google", "drive"): 8,
    ("google", "token"): 3,
    ("google", "admin"): 7,
    ("slack", "audit"): 20,
}
_EXTRA: dict[tuple[str, str], list[str]] = {
    ("m365", "signins"): [
        "appDisplayName|contains: ['{w}', 'Graph']",
        "clientAppUsed: [IMAP4, POP3, Browser]",
        "ipAddress|cidr: {net}",
        "location.countryOrRegion: [{cc}, RU, KP]",
        "deviceDetail.browser|startswith: {w}",
        "userPrincipalName|endswith: '@contoso.example'",
        "isInteractive: true",
        "riskLevelDuringSignIn: [high, medium]",
        "appDisplayName|re: '^(Azure|Graph) [A-Za-z]+$'",
    ],
    ("m365", "directory_audits"): [
        "targetResources.modifiedProperties.newValue|contains: '{w}'",
        "initiatedBy.user.userPrincipalName|endswith: '@contoso.example'",
        "initiatedBy.user.ipAddress|cidr: {net}",
        "result: success",
        "targetResources.type: [User, Group]",
    ],
    ("m365", "unified_audit"): [
        "ClientIP|cidr: {net}",
        "SourceFileExtension: [docx, xlsx, pdf]",
        "Workload: [SharePoint, OneDrive, Exchange]",
        "UserId|endswith: '@contoso.example'",
        "ObjectId|contains: '{w}'",
        "Parameters.Name: [ForwardTo, RedirectTo]",
        "UserAgent|re: 'Chrome/1[0-9]{{2}}'",
    ],
    ("google", "login"): [
        "ipAddress|cidr: {net}",
        "actor.email|endswith: '@contoso.example'",
        "parameters.login_type: [google_password, saml]",
    ],
    ("google", "drive"): [
        "parameters.visibility: [people_with_link, public_on_the_web]",
        "parameters.doc_title|contains: '{w}'",
        "ipAddress|cidr: {net}",
    ],
    ("google", "token"): [
        "parameters.scope: ['https://mail.google.com/', 'https://www.googleapis.com/auth/drive']",
        "parameters.app_name|contains: '{w}'",
    ],
    ("google", "admin"): [
        "parameters.USER_EMAIL|endswith: '@contoso.example'",
        "parameters.NEW_VALUE: [ALLOWED, 'false']",
    ],
    ("slack", "audit"): [
        "context.ip_address|cidr: {net}",
        "actor.user.email|endswith: '@contoso.example'",
        "context.ua|contains: '{w}'",
        "entity.type: [user, file, app]",
        "details.reason: [asn, tor, session_fingerprint]",
    ],
}
_UNINDEXED: dict[tuple[str, str], str] = {
    ("m365", "signins"): "ipAddress|cidr: {net}",
    ("m365", "directory_audits"): "initiatedBy.user.ipAddress|cidr: {net}",
    ("m365", "unified_audit"): "ClientIP|cidr: {net}",
    ("google", "login"): "ipAddress|cidr: {net}",
    ("google", "drive"): "parameters.doc_title|contains: '{w}'",
    ("google", "token"): "parameters.app_name|contains: '{w}'",
    ("google", "admin"): "parameters.USER_EMAIL|startswith: '{w}'",
    ("slack", "audit"): "context.ua|contains: '{w}'",
}
_WORDS = (
    "Admin",
    "Sync",
    "Backup",
    "Office",
    "Teams",
    "Quarterly",
    "Mail",
    "Export",
    "python",
    "Mozilla",
    "Slack",
)


def synthetic_pack_yaml(count: int = 300, seed: int = 5) -> list[str]:
    """`count` Sigma rules over every stream: mostly exact-match on the stream's action-like field
    plus one or two other conditions (contains, startswith, cidr, re, lists), ~10 % with no
    exact-match field at all, ~20 % with a negated filter."""
    rng = random.Random(seed)
    streams = list(_STREAM_WEIGHTS)
    weights = [_STREAM_WEIGHTS[s] for s in streams]
    out = []
    for number in range(count):
        provider, stream = rng.choices(streams, weights)[0]

        def fill(template: str) -> str:
            return template.format(
                w=rng.choice(_WORDS),
                cc=rng.choice(("US", "GB", "DE", "IN")),
                net=f"{rng.choice((20, 40, 52, 81, 185, 203))}.{rng.randrange(256)}.0.0/16",
            )

        field, vocab = _VOCAB[(provider, stream)]
        selection = []
        if rng.random() < 0.1:
            selection.append(fill(_UNINDEXED[(provider, stream)]))
        else:
            values = rng.sample(vocab, k=min(len(vocab), rng.choice((1, 1, 1, 2, 3))))
            rendered = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
            selection.append(f"{field}: [{rendered}]")
            for template in rng.sample(_EXTRA[(provider, stream)], k=rng.choice((0, 1, 1, 2))):
                selection.append(fill(template))
        condition = "selection"
        filter_block = ""
        if rng.random() < 0.2:
            filter_block = f"  filter:\n    {fill(rng.choice(_EXTRA[(provider, stream)]))}\n"
            condition = "selection and not filter"
        body = "\n".join(f"    {line}" for line in selection)
        out.append(
            f"title: synthetic {number}\nid: {uuid.UUID(int=rng.getrandbits(128))}\nname: synthetic_{number}\n"
            f"logsource:\n  product: {provider}\n  service: {stream}\n"
            f"detection:\n  selection:\n{body}\n{filter_block}  condition: {condition}\nlevel: medium\n"
        )
    return out


def load_synthetic_pack(count: int = 300) -> RulePack:
    with tempfile.TemporaryDirectory() as folder:
        for number, text in enumerate(synthetic_pack_yaml(count)):
            Path(folder, f"synthetic_{number:03d}.yml").write_text(text)
        pack = load_pack([folder])
    if pack.problems:
        raise RuntimeError(f"synthetic pack did not load: {pack.problems[:3]}")
    return pack


# --- measurements -------------------------------------------------------------------------------------


def measure_indexed(rules: list[CompiledRule], records: list[EventRecord]) -> tuple[Any, int]:
    index = RuleIndex(rules)
    matches = sum(len(index.match(EventView(r))) for r in records)

    def work() -> int:
        match = index.match
        for record in records:
            match(EventView(record))
        return len(records)

    return repeat(rate(work), RUNS), matches


BATCH = 5000


def batch_work(rules: list[CompiledRule], records: list[EventRecord]) -> tuple[Any, int]:
    index = RuleIndex(rules)
    batches = [records[start : start + BATCH] for start in range(0, len(records), BATCH)]
    matches = sum(len(found) for batch in batches for found in index.match_batch(batch))

    def work() -> int:
        match = index.match_batch
        for batch in batches:
            match(batch)
        return len(records)

    return work, matches


def measure_naive(rules: list[CompiledRule], records: list[EventRecord]) -> tuple[Any, int]:
    matches = sum(len(naive_match(rules, EventView(r))) for r in records)

    def work() -> int:
        for record in records:
            naive_match(rules, EventView(record))
        return len(records)

    return repeat(rate(work), RUNS), matches


def measure_engine(pack: RulePack, records: list[EventRecord]) -> Any:
    def work() -> int:
        engine = DetectionEngine(pack)
        for start in range(0, len(records), 5000):
            engine.process(records[start : start + 5000])
        return len(records)

    return repeat(rate(work), RUNS)


def _rule_fields(rule: CompiledRule) -> set[str]:
    fields: set[str] = set()

    def visit(item: Any) -> None:
        for child in getattr(item, "detection_items", ()):
            visit(child)
        field = getattr(item, "field", None)
        if isinstance(field, str):
            fields.add(field)

    for detection in rule.sigma.detection.detections.values():
        visit(detection)
    return fields


def flatten(data: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Zircolite-style: every leaf under its dotted (lower-cased) path; lists joined with commas."""
    out = {} if out is None else out
    if isinstance(data, dict):
        for key, value in data.items():
            flatten(value, f"{prefix}{str(key).lower()}.", out)
        return out
    name = prefix[:-1]
    if isinstance(data, list):
        scalars = [flatten(item, prefix, {}) if isinstance(item, dict) else item for item in data]
        for item in scalars:
            if isinstance(item, dict):
                for key, value in item.items():
                    out[key] = value if key not in out else f"{out[key]},{value}"
        plain = [str(item) for item in scalars if not isinstance(item, dict)]
        if plain:
            out[name] = ",".join(plain)
        return out
    out[name] = data
    return out


class SqliteBaseline:
    """The rules converted by pySigma's SQLite backend, run over the events in SQLite tables."""

    def __init__(self, rules: list[CompiledRule], records: list[EventRecord]) -> None:
        from sigma.backends.sqlite import sqliteBackend
        from sigma.collection import SigmaCollection

        backend = sqliteBackend()
        self.queries: list[tuple[str, str]] = []
        self.fields: dict[str, set[str]] = defaultdict(set)
        self.skipped = 0
        for rule in rules:
            try:
                (query,) = backend.convert(SigmaCollection([rule.sigma]))
            except Exception:  # noqa: BLE001 - a rule the backend cannot express is skipped and counted
                self.skipped += 1
                continue
            for stream in rule.streams:
                table = f"logs_{rule.provider}_{stream}"
                self.fields[table] |= _rule_fields(rule)
                self.queries.append((table, re.sub(r"\bFROM logs\b", f"FROM {table}", query, count=1)))
        self.records = records
        self.db = sqlite3.connect(":memory:")
        self.db.create_function("regexp", 2, _regexp, deterministic=True)

    def load(self) -> int:
        by_table: dict[str, list[EventRecord]] = defaultdict(list)
        for record in self.records:
            by_table[f"logs_{record.provider}_{record.stream}"].append(record)
        for table, fields in self.fields.items():
            columns = sorted(fields)
            self.db.execute(f"DROP TABLE IF EXISTS {table}")
            self.db.execute(f"CREATE TABLE {table} (" + ", ".join(f"`{c}`" for c in columns) + ")")
            lowered = [c.lower() for c in columns]
            rows = []
            for record in by_table.get(table, []):
                flat = flatten(record.data)
                rows.append(tuple(flat.get(c) for c in lowered))
            marks = ", ".join("?" for _ in columns)
            self.db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        self.db.commit()
        return len(self.records)

    def load_and_query(self) -> int:
        self.load()
        return self.query()

    def query(self) -> int:
        matches = 0
        for _, sql in self.queries:
            matches += self.db.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        self.matches = matches
        return len(self.records)


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and re.search(pattern, str(value)) is not None


def measure_against_sqlite(
    rules: list[CompiledRule], records: list[EventRecord], work: Any
) -> tuple[dict[str, Stats], SqliteBaseline]:
    """The batch matcher and pySigma SQLite's load + query, alternated run by run, in CPU time and
    in wall time; and SQLite's queries alone (CPU)."""
    baseline = SqliteBaseline(rules, records)
    batch_cpu, total_cpu = paired(rate(work), rate(baseline.load_and_query))
    batch_wall, total_wall = paired(wall_rate(work), wall_rate(baseline.load_and_query))
    query = repeat(rate(baseline.query), RUNS)
    stats = {
        "batch cpu": batch_cpu,
        "sqlite cpu": total_cpu,
        "batch wall": batch_wall,
        "sqlite wall": total_wall,
        "query cpu": query,
    }
    return stats, baseline


def correlation_memory(keys: int) -> tuple[float, float]:
    """Bytes of correlation state per 1,000,000 distinct group keys (event_count and value_count)."""
    results = []
    for kind in (CorrelationType.EVENT_COUNT, CorrelationType.VALUE_COUNT):
        corr = CompiledCorrelation(
            rule_id="bench",
            uuid=None,
            name="bench",
            title="bench",
            description="",
            level="high",
            status=None,
            tags=(),
            type=kind,
            member_refs=("m",),
            members=("m",),
            group_by=("userPrincipalName",),
            timespan=3600.0,
            count=10,
            value_field=None if kind is CorrelationType.EVENT_COUNT else _path("ipAddress"),
        )
        state = CorrelationState(corr, lateness=7200.0, max_groups=keys + 1, max_entries=256)
        records = [
            EventRecord(
                n,
                "m365",
                "signins",
                1_800_000_000.0 + n * 0.001,
                {
                    "userPrincipalName": f"user{n}@contoso.example",
                    "ipAddress": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                },
            )
            for n in range(keys)
        ]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for record in records:
            state.observe("m", EventView(record), record.ts, record.id)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(state.groups) == keys
        results.append((after - before) * 1_000_000 / keys)
        del state, records
        gc.collect()
    return results[0], results[1]


def _path(name: str) -> Any:
    from detectors.sigma.compiler import FieldPath

    return FieldPath.of(name)


# --- figures --------------------------------------------------------------------------------------------


def pack_figures(label: str, pack: RulePack, records: list[EventRecord], goal: bool) -> list[Figure]:
    work, batch_matches = batch_work(pack.rules, records)
    indexed, indexed_matches = measure_indexed(pack.rules, records)
    naive, naive_matches = measure_naive(pack.rules, records)
    if not indexed_matches == naive_matches == batch_matches:
        raise RuntimeError(
            f"{label}: batch found {batch_matches} matches, index {indexed_matches}, naive {naive_matches}"
        )
    stats, baseline = measure_against_sqlite(pack.rules, records, work)
    batch, total, query = stats["batch cpu"], stats["sqlite cpu"], stats["query cpu"]
    rules = f"{len(pack.rules)} rules"
    at_300 = "≥ 10× at 300 rules" if label.startswith("synthetic 300") else None
    figures = [
        Figure.from_stats(
            AREA,
            f"matching, {label} ({rules}), batch",
            batch,
            "events/s",
            baseline_name="one event at a time (indexed)",
            baseline=indexed.median,
            notes=f"{len(records):,} events in batches of {BATCH:,}, {batch_matches:,} rule matches (same as naive)",
        ),
        Figure.from_stats(
            AREA,
            f"matching, {label} ({rules}), indexed",
            indexed,
            "events/s",
            baseline_name="naive: every rule on every event",
            baseline=naive.median,
            goal="≥ 150,000 events/s" if goal else None,
        ),
        Figure.from_stats(AREA, f"matching, {label}, naive", naive, "events/s"),
        Figure.from_stats(
            AREA,
            f"matching, {label}, batch vs pySigma SQLite (flatten + load + query)",
            batch,
            "events/s",
            baseline_name="pySigma sqlite end to end",
            baseline=total.median,
            goal=at_300,
            notes=f"{len(baseline.queries)} queries, {baseline.skipped} rules the backend could not convert",
        ),
        Figure.from_stats(
            AREA,
            f"matching, {label}, batch vs pySigma SQLite (queries only, events already loaded)",
            batch,
            "events/s",
            baseline_name="pySigma sqlite queries",
            baseline=query.median,
            notes=f"{baseline.matches:,} rows matched",
        ),
        Figure.from_stats(
            AREA,
            f"matching, {label}, batch vs pySigma SQLite (flatten + load + query), wall clock",
            stats["batch wall"],
            "events/s",
            baseline_name="pySigma sqlite end to end, wall clock",
            baseline=stats["sqlite wall"].median,
            goal=at_300,
        ),
        Figure.from_stats(AREA, f"pySigma SQLite, {label}: flatten + load + query", total, "events/s"),
        Figure.from_stats(AREA, f"pySigma SQLite, {label}: queries only", query, "events/s"),
    ]
    return figures


def run(quick: bool = False) -> list[Figure]:
    shipped = load_pack([default_rules_path()])
    if shipped.problems:
        raise RuntimeError(f"shipped pack has problems: {shipped.problems[:3]}")
    synthetic = load_synthetic_pack(300)
    count = 20_000 if quick else 100_000
    records = bench_events(count, shipped)
    figures = pack_figures("shipped pack", shipped, records, goal=True)
    figures += pack_figures("synthetic 300-rule pack", synthetic, records, goal=True)
    if not quick:  # how cost grows with the pack: SQLite runs one more scan per rule, the index does not
        figures += pack_figures("synthetic 1000-rule pack", load_synthetic_pack(1000), records, goal=False)
    engine = measure_engine(shipped, records)
    figures.append(
        Figure.from_stats(
            AREA,
            f"engine, shipped pack ({len(shipped.rules)} rules + {len(shipped.correlations)} correlations)",
            engine,
            "events/s",
            notes="matching + correlations + dedup/threshold, 5,000-event batches",
        )
    )
    keys = 100_000 if quick else 1_000_000
    event_count_bytes, value_count_bytes = correlation_memory(keys)
    for name, value in (("event_count", event_count_bytes), ("value_count", value_count_bytes)):
        figures.append(
            Figure(
                AREA,
                f"correlation state per 1,000,000 group keys ({name})",
                value / 2**20,
                "MiB",
                notes=f"measured with tracemalloc over {keys:,} distinct keys, one match each",
            )
        )
    return figures


def ratio_at_300(count: int, runs: int) -> list[Figure]:
    """The issue's floor alone: the batch matcher against pySigma SQLite (flatten + load + query)
    on the synthetic 300-rule pack, `runs` alternated pairs in CPU time, and each pair's ratio."""
    records = bench_events(count, load_pack([default_rules_path()]))
    rules = load_synthetic_pack(300).rules
    work, _ = batch_work(rules, records)
    baseline = SqliteBaseline(rules, records)
    ratios, batch, sqlite = [], [], []
    for _ in range(runs):
        batch.append(rate(work)())
        sqlite.append(rate(baseline.load_and_query)())
        ratios.append(batch[-1] / sqlite[-1])
    return [
        Figure.from_stats(AREA, "batch, synthetic 300-rule pack", _stats(batch), "events/s"),
        Figure.from_stats(AREA, "pySigma SQLite flatten + load + query", _stats(sqlite), "events/s"),
        Figure.from_stats(
            AREA,
            "batch vs pySigma SQLite, ratio of each pair",
            _stats(ratios),
            "×",
            goal="≥ 10× at 300 rules",
            notes=f"{count:,} events, {runs} pairs, CPU time",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.detection_matching")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--ratio", type=int, metavar="EVENTS", help="only batch vs pySigma SQLite at 300 rules, EVENTS events"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    figures = ratio_at_300(args.ratio, args.runs) if args.ratio else run(quick=args.quick)
    print_table(figures)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
