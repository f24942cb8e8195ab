"""`tenantguard rules test|validate|list|convert` and `tenantguard detect`.

`rules test` runs both packs: Sigma detections and posture checks (rules/posture).

Every command takes rule files or directories (default: the shipped pack, or
TENANTGUARD_RULES_DIR). Refused rules are printed as `file:line (rule id): reason`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from cli.context import console, database, err_console, settings

app = typer.Typer(
    help="Detection rules: run their tests, validate, list coverage, convert.", no_args_is_help=True
)

PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Rule files or directories (default: the shipped pack, or TENANTGUARD_RULES_DIR)."),
]


def _load(paths: list[Path] | None) -> tuple[Any, list[Any]]:
    from detectors.pipeline import default_rules_path
    from detectors.sigma.loader import load_pack

    targets = paths or [default_rules_path(settings())]
    missing = [p for p in targets if not p.exists()]
    if missing:
        raise typer.BadParameter(f"{missing[0]} does not exist")
    lint: list[Any] = []
    return load_pack(targets, lint=lint), lint


def _print_problems(problems: list[Any], label: str) -> None:
    for problem in problems:
        err_console.print(f"[red]{label}[/red] {problem}", highlight=False, soft_wrap=True)


def _is_posture(path: Path) -> bool:
    """Posture checks live under a `posture` folder (rules/posture/...); everything else is Sigma."""
    return "posture" in path.resolve().parts


def _posture_tests(paths: list[Path], rules: set[str] | None, verbose: bool) -> tuple[int, int]:
    """Run the posture checks' own snapshots; print failures; return (tests, failed)."""
    from detectors.posture import run_check_tests

    total = failed = 0
    for path in paths:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist")
        for result in run_check_tests(path):
            if rules and result.check_id not in rules:
                continue
            total += 1
            where = f"{result.source}:{result.line}" if result.line else result.source
            if result.ok:
                if verbose:
                    console.print(f"[green]PASS[/green] {result.check_id} :: {result.test}", highlight=False)
                continue
            failed += 1
            console.print(
                f"[red]FAIL[/red] {result.check_id} :: {result.test}  ({where}): expected {result.expected}, "
                f"got {result.actual}" + (f" — {result.message}" if result.message else ""),
                highlight=False,
                soft_wrap=True,
            )
    return total, failed


@app.command("test")
def test(
    paths: PathsArg = None,
    rule: Annotated[
        list[str] | None, typer.Option("--rule", "-r", help="Only this rule or check id (repeatable).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passing tests too.")] = False,
) -> None:
    """Run every Sigma rule's test events and every posture check's test snapshots; exit 1 on any
    failure, refused rule or rule without tests. Without PATH: the shipped packs (rules/detections
    and rules/posture); a PATH under a `posture` folder is run as posture checks."""
    from detectors.posture.checks import DEFAULT_RULES_DIR
    from detectors.sigma.testing import run_pack_tests

    given = list(paths or [])
    posture_paths = [p for p in given if _is_posture(p)] if given else [DEFAULT_RULES_DIR]
    sigma_paths = [p for p in given if not _is_posture(p)]
    selected = set(rule) if rule else None
    failures = 0
    ran = 0
    if sigma_paths or not given:
        pack, lint = _load(sigma_paths or None)
        outcomes = run_pack_tests(pack, selected)
        failed = [o for o in outcomes if not o.passed]
        for outcome in outcomes:
            if outcome.passed and verbose:
                console.print(f"[green]PASS[/green] {outcome.rule_id} :: {outcome.test}", highlight=False)
            elif not outcome.passed:
                console.print(
                    f"[red]FAIL[/red] {outcome.rule_id} :: {outcome.test}  ({outcome.where})", highlight=False
                )
                for line in outcome.details:
                    console.print(f"      {line}", highlight=False, soft_wrap=True)
        _print_problems(pack.problems, "REFUSED")
        _print_problems(lint, "UNTESTED")
        total = len(outcomes)
        console.print(
            f"Sigma: {total - len(failed)}/{total} tests passed across {len(pack.rules)} rules and "
            f"{len(pack.correlations)} correlations in {len(pack.files)} files"
            + (f"; {len(pack.problems)} rule(s) refused" if pack.problems else "")
            + (f"; {len(lint)} rule(s) without positive and negative tests" if lint else ""),
            highlight=False,
        )
        failures += len(failed) + len(pack.problems) + len(lint)
        ran += total
    if posture_paths:
        total, failed_count = _posture_tests(posture_paths, selected, verbose)
        console.print(f"Posture: {total - failed_count}/{total} check tests passed", highlight=False)
        failures += failed_count
        ran += total
    if failures or (rule and not ran):
        raise typer.Exit(1)


@app.command("validate")
def validate(
    paths: PathsArg = None,
    allow_untested: Annotated[
        bool, typer.Option("--allow-untested", help="Do not fail rules that lack positive/negative tests.")
    ] = False,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Print load / can-fire / fires figures per provider for the folder (e.g. SigmaHQ's "
            "cloud rules) and list what cannot fire; rules without tests do not fail it.",
        ),
    ] = False,
    output: Annotated[str, typer.Option("--format", help="With --report: table or json")] = "table",
) -> None:
    """Check that every rule parses and compiles; print file, line and reason for each refusal."""
    pack, lint = _load(paths)
    if report:
        _print_report(pack, output)
        return
    _print_problems(pack.problems, "REFUSED")
    if not allow_untested:
        _print_problems(lint, "UNTESTED")
    console.print(
        f"{len(pack.rules)} rules and {len(pack.correlations)} correlations valid in {len(pack.files)} files"
        + (f"; {len(pack.problems)} refused" if pack.problems else ""),
        highlight=False,
    )
    if pack.problems or (lint and not allow_untested):
        raise typer.Exit(1)


def _can_fire(item: Any, index: dict[str, Any], depth: int = 0) -> bool:
    """A rule can fire when every field it reads is in its streams' stored shape; a correlation
    when all its members can."""
    members = getattr(item, "members", None)
    if members is None:
        return bool(item.can_fire)
    return depth < 10 and all(m in index and _can_fire(index[m], index, depth + 1) for m in members)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _print_report(pack: Any, output: str) -> None:
    from detectors.sigma.shapes import fires_on_built_event

    if output not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    index = pack.by_id()
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    cannot: list[dict[str, Any]] = []
    for rule in pack.rules:
        row = stats[rule.provider]
        row["loaded"] += 1
        row["can_fire"] += rule.can_fire
        row["with_tests"] += bool(rule.tests)
        if rule.can_fire:
            row["fires_on_built_event"] += fires_on_built_event(rule)
        else:
            cannot.append(
                {
                    "id": rule.rule_id,
                    "source": str(rule.source),
                    "streams": [f"{rule.provider}/{s}" for s in rule.streams],
                    "unknown_fields": list(rule.unknown_fields),
                }
            )
    for corr in pack.correlations:
        row = stats[corr.provider or "?"]
        row["correlations"] += 1
        row["correlations_can_fire"] += _can_fire(corr, index)
    total: Counter[str] = Counter()
    for row in stats.values():
        total.update(row)
    documents = total["loaded"] + total["correlations"] + len(pack.problems)
    loaded = total["loaded"] + total["correlations"]
    summary = {
        "files": len(pack.files),
        "documents": documents,
        "refused": len(pack.problems),
        "loaded": loaded,
        "providers": {p: dict(c) for p, c in sorted(stats.items())},
        "total": dict(total),
        "cannot_fire": cannot,
        "refusals": [str(p) for p in pack.problems],
    }
    if output == "json":
        print(json.dumps(summary, indent=2))
        return
    _print_problems(pack.problems, "REFUSED")
    for item in cannot:
        err_console.print(
            f"[yellow]CANNOT FIRE[/yellow] {item['source']} ({item['id']}): reads "
            f"{', '.join(item['unknown_fields'])}, not in the stored events of {', '.join(item['streams'])}",
            highlight=False,
            soft_wrap=True,
        )
    table = Table(title=f"{documents} rule documents in {len(pack.files)} files")
    for column in (
        "provider",
        "rules loaded",
        "can fire",
        "fires on built event",
        "with tests",
        "correlations",
    ):
        table.add_column(column, justify="left" if column == "provider" else "right")
    for name, row in [*sorted(stats.items()), ("total", total)]:
        table.add_row(
            name,
            str(row["loaded"]),
            f"{row['can_fire']} ({_percent(row['can_fire'], row['loaded'])})",
            f"{row['fires_on_built_event']} ({_percent(row['fires_on_built_event'], row['can_fire'])})",
            str(row["with_tests"]),
            f"{row['correlations']} ({row['correlations_can_fire']} can fire)",
        )
    console.print(table)
    console.print(
        f"loaded {loaded}/{documents} ({_percent(loaded, documents)}), "
        f"{len(pack.problems)} refused; can fire {total['can_fire']}/{total['loaded']} "
        f"({_percent(total['can_fire'], total['loaded'])}); fires on an event built from the rule "
        f"{total['fires_on_built_event']}/{total['can_fire']} ({_percent(total['fires_on_built_event'], total['can_fire'])})",
        highlight=False,
    )


@app.command("list")
def list_rules(
    paths: PathsArg = None,
    provider: Annotated[
        str | None, typer.Option(help="Only rules for this provider (m365, google, slack).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Rules with level and ATT&CK mapping, and coverage by provider and tactic."""
    pack, _ = _load(paths)
    index = pack.by_id()
    items = [*pack.rules, *pack.correlations]
    if provider:
        items = [i for i in items if i.provider == provider]
    rows = []
    for item in items:
        alert = item.alert
        rows.append(
            {
                "id": item.rule_id,
                "title": item.title,
                "kind": "correlation" if hasattr(item, "members") else "rule",
                "provider": item.provider,
                "streams": list(getattr(item, "streams", ())),
                "level": alert.severity if alert else item.level,
                "signal_only": bool(alert and alert.signal_only),
                "tactics": list(alert.tactics) if alert else [],
                "techniques": list(alert.mitre) if alert else [],
                "tests": len(item.tests),
                "can_fire": _can_fire(item, index),
                "unknown_fields": list(getattr(item, "unknown_fields", ())),
                "source": str(item.source),
            }
        )
    if output == "json":
        print(json.dumps({"rules": rows, "coverage": _coverage(rows)}, indent=2))
        return
    if output != "table":
        raise typer.BadParameter("--format must be table or json")
    table = Table(title=f"{len(rows)} detections")
    for column in ("id", "kind", "provider", "level", "tactics", "techniques", "tests", "can fire"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: (r["provider"] or "", r["id"])):
        level = row["level"] + (" (signal)" if row["signal_only"] else "")
        table.add_row(
            row["id"],
            row["kind"],
            row["provider"] or "",
            level,
            ", ".join(row["tactics"]),
            ", ".join(row["techniques"]),
            str(row["tests"]),
            "yes" if row["can_fire"] else "no: reads " + ", ".join(row["unknown_fields"]),
        )
    console.print(table)
    coverage = _coverage(rows)
    providers = sorted(coverage["providers"])
    summary = Table(title="Rules per provider")
    for column in ("provider", "loaded", "alert", "can fire", "has tests", "alert, can fire and tested"):
        summary.add_column(column, justify="left" if column == "provider" else "right")
    for name in providers:
        c = coverage["providers"][name]
        summary.add_row(
            name, *(str(c[k]) for k in ("loaded", "alerting", "can_fire", "with_tests", "counted"))
        )
    console.print(summary)
    cov = Table(title="ATT&CK tactic coverage (rules that alert, can fire and have tests)")
    cov.add_column("tactic")
    for name in providers:
        cov.add_column(name, justify="right")
    for tactic in sorted(coverage["tactics"]):
        cov.add_row(tactic, *(str(coverage["tactics"][tactic].get(p, 0)) for p in providers))
    console.print(cov)


def _coverage(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per provider: loaded / alerting / can fire / has tests; per tactic, only the rules that
    count as coverage: they alert (not signal-only), can fire on what we store, and have tests."""
    tactics: dict[str, Counter[str]] = defaultdict(Counter)
    providers: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        name = row["provider"] or "?"
        counts = providers[name]
        counts["loaded"] += 1
        counts["alerting"] += not row["signal_only"]
        counts["can_fire"] += row["can_fire"]
        counts["with_tests"] += row["tests"] > 0
        counted = not row["signal_only"] and row["can_fire"] and row["tests"] > 0
        counts["counted"] += counted
        if counted:
            for tactic in row["tactics"]:
                tactics[tactic][name] += 1
    return {
        "providers": {
            p: {k: c[k] for k in ("loaded", "alerting", "can_fire", "with_tests", "counted")}
            for p, c in providers.items()
        },
        "tactics": {t: dict(c) for t, c in tactics.items()},
    }


STORED_TARGET = "tenantguard"
# pySigma backends for the SIEMs people ask for, and the package that provides each.
BACKEND_PACKAGES = {
    "splunk": "pysigma-backend-splunk",
    "elasticsearch": "pysigma-backend-elasticsearch",
    "esql": "pysigma-backend-elasticsearch",
    "eql": "pysigma-backend-elasticsearch",
    "opensearch": "pysigma-backend-opensearch",
    "kusto": "pysigma-backend-kusto",
    "sentinel": "pysigma-backend-kusto",
    "panther": "pysigma-backend-panther",
    "sqlite": "pysigma-backend-sqlite",
}


def _stored_logsource(item: Any) -> dict[str, str]:
    """The logsource of our own taxonomy that a (possibly community) rule resolved to."""
    out = {"product": item.provider}
    if len(item.streams) == 1:
        out["service"] = item.streams[0]
    return out


def _mapped_rule(item: Any) -> str:
    """A rule after the processing pipelines, as YAML in our stored shape's field names
    (raises detectors.sigma.mapped.NotExpressible when one Sigma rule cannot state it)."""
    import copy

    import yaml
    from sigma.rule import SigmaDetections

    from detectors.sigma.mapped import mapped_detection

    # pySigma's to_dict cannot write some mapped detections (and writes others wrongly): the
    # rest of the rule from it, the detection from detectors.sigma.mapped
    rule = copy.copy(item.sigma)
    rule.detection = SigmaDetections.from_dict({"x": {"x": "x"}, "condition": "x"})
    doc = rule.to_dict()
    written = doc.get("logsource") or {}
    doc["logsource"] = _stored_logsource(item)
    doc["detection"] = mapped_detection(item.sigma)
    header = [f"# {item.source}"]
    if written != doc["logsource"]:
        header.append(
            "# written for "
            + ", ".join(f"{k}: {v}" for k, v in written.items())
            + f"; fields mapped onto {item.provider}/{'+'.join(item.streams)}"
        )
    if item.unknown_fields:
        header.append(f"# cannot fire: no stored event has {', '.join(item.unknown_fields)}")
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join([*header, body.rstrip(), ""])


def _threshold_refusal(item: Any) -> str | None:
    """Why a rule's alerting cannot be carried by one backend query, if it cannot."""
    alert = item.alert
    if alert.threshold > 1:
        counted = (
            f"{alert.threshold} distinct {alert.unique.written}" if alert.unique else str(alert.threshold)
        )
        return (
            f"alerts only once {counted} matches share a key within {int(alert.dedup_period)} s "
            "(tenantguard threshold), which one query cannot express; write it as a Sigma "
            "event_count/value_count correlation to convert it"
        )
    return None


@app.command("convert")
def convert(
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help=f"pySigma backend, e.g. sqlite, splunk, kusto (see --list); '{STORED_TARGET}' prints "
            "each rule mapped onto the stored shape.",
        ),
    ] = "",
    paths: PathsArg = None,
    output_format: Annotated[
        str, typer.Option("--output-format", "-f", help="Backend output format.")
    ] = "default",
    list_targets: Annotated[bool, typer.Option("--list", help="List installed backends.")] = False,
) -> None:
    """Convert the pack with an installed pySigma backend (one query per rule or correlation,
    errors and refusals per rule), or show each rule as the pipelines mapped it (-t tenantguard)."""
    from sigma.collection import SigmaCollection
    from sigma.conversion.base import Backend
    from sigma.plugins import InstalledSigmaPlugins

    backends = InstalledSigmaPlugins.autodiscover().backends
    if list_targets or not target:
        console.print(
            f"targets: {STORED_TARGET} (the rule in the stored shape); installed backends: "
            + (", ".join(sorted(backends)) or "none (pip install pysigma-backend-...)")
        )
        if not target:
            raise typer.Exit(0 if list_targets else 1)
        return
    if target == STORED_TARGET:
        import yaml

        from detectors.sigma.mapped import NotExpressible

        pack, _ = _load(paths)
        _print_problems(pack.problems, "refused")
        unwritten = 0
        for item in pack.rules:
            try:
                print("---\n" + _mapped_rule(item))
            except NotExpressible as exc:
                unwritten += 1
                err_console.print(f"[yellow]not written[/yellow] {item.rule_id}: {exc}", highlight=False)
        for corr in pack.correlations:  # correlations name rules and group-by fields: nothing to map
            doc = corr.sigma.to_dict()
            if getattr(corr.sigma, "generate", False):  # pySigma's to_dict leaves it out
                doc["correlation"]["generate"] = True
            print(f"---\n# {corr.source}\n" + yaml.safe_dump(doc, sort_keys=False).rstrip())
        raise typer.Exit(1 if pack.problems or unwritten else 0)
    if target not in backends:
        package = BACKEND_PACKAGES.get(target, f"pysigma-backend-{target}")
        err_console.print(
            f"no pySigma backend {target!r} installed: pip install {package} "
            f"(installed: {', '.join(sorted(backends)) or 'none'})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    pack, _ = _load(paths)
    # pySigma annotates the registry as instances; it holds the backend classes
    backend_class = cast(type[Backend], backends[target])
    failures = 0

    def emit(label: str, title: str, collection: Any) -> None:
        nonlocal failures
        try:
            queries = backend_class().convert(collection, output_format)
        except Exception as exc:  # a backend that cannot express a rule must not stop the others
            failures += 1
            err_console.print(f"[yellow]skipped[/yellow] {label}: {exc}", highlight=False)
            return
        for query in queries if isinstance(queries, list) else [queries]:
            print(f"-- {label}: {title}\n{query}")

    for item in pack.rules:
        if item.used_by and not item.emits:
            continue  # a signal: converted with the correlation that uses it
        refusal = _threshold_refusal(item)
        if refusal:
            failures += 1
            err_console.print(
                f"[yellow]refused[/yellow] {item.rule_id}: {refusal}", highlight=False, soft_wrap=True
            )
            continue
        emit(item.rule_id, item.title, SigmaCollection([item.sigma]))
    by_id = pack.by_id()
    for corr in pack.correlations:
        members: list[Any] = []
        pending = list(corr.members)
        while pending:  # a correlation of correlations needs every rule below it
            member = by_id[pending.pop()]
            if member.sigma not in members:
                members.append(member.sigma)
            pending.extend(getattr(member, "members", ()))
        collection = SigmaCollection([*members, corr.sigma])
        try:
            collection.resolve_rule_references()
        except Exception as exc:
            failures += 1
            err_console.print(f"[yellow]skipped[/yellow] {corr.rule_id}: {exc}", highlight=False)
            continue
        emit(corr.rule_id, corr.title, collection)
    if failures:
        raise typer.Exit(1)


def detect(
    anomaly: Annotated[
        bool, typer.Option("--anomaly/--rules-only", help="Also run the anomaly detectors.")
    ] = True,
) -> None:
    """Run detection (Sigma rules, correlations, anomaly detectors) over stored events not yet processed,
    and the posture checks when new snapshots arrived."""
    from cli.context import settings
    from pipeline import run_cycle

    cycle = run_cycle(database(), settings(), only=("detect", "posture", "identity"), with_anomaly=anomaly)
    detected, posture, identity = cycle.of("detect"), cycle.of("posture"), cycle.of("identity")
    counts = detected.counts if detected is not None else {}
    errors = cycle.errors
    console.print(
        f"{counts.get('events', 0)} events: {counts.get('findings', 0)} new findings, "
        f"{counts.get('findings_updated', 0)} updated, {counts.get('suppressed', 0)} suppressed"
        + (f", {len(errors)} errors" if errors else ""),
        highlight=False,
    )
    if posture is not None and not posture.skipped:
        c = posture.counts
        console.print(
            f"posture: {c.get('results', 0)} check results, {c.get('failing', 0)} failing, "
            f"{c.get('findings', 0)} posture/drift findings, {c.get('resolved', 0)} resolved",
            highlight=False,
        )
    if identity is not None and not identity.skipped:
        c = identity.counts
        console.print(
            f"identity: {c.get('scored', 0)} people scored, {c.get('findings', 0)} findings "
            f"opened, {c.get('resolved', 0)} resolved",
            highlight=False,
        )
    for error in errors[:20]:
        err_console.print(f"[yellow]{error}[/yellow]", highlight=False)


COMMANDS: dict[str, Callable[..., Any]] = {"detect": detect}
