"""The layering of docs/architecture.md holds in the code: no upward import, no cycle between packages.

Imports are read with ``ast`` (nothing is imported), including imports inside functions, so a
lazy import cannot hide an upward edge. Layers, bottom to top:

    core  <  providers  <  stages  <  pipeline  <  api, console, cli

A stage (collectors, detectors, identity, timeline, remediation, oncall, response, compliance)
may import another stage only through an edge listed in ``STAGE_EDGES``; the listed edges form
no cycle. The simulator imports nothing of the product (only ``cli`` starts it). ``bench`` and
``tests`` may import anything and are not checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS: dict[str, int] = {
    "core": 0,
    "providers": 1,
    "collectors": 2,
    "detectors": 2,
    "identity": 2,
    "timeline": 2,
    "remediation": 2,
    "oncall": 2,
    "response": 2,
    "compliance": 2,
    "pipeline": 3,
    "api": 4,
    "console": 4,
    "cli": 4,
}
SIMULATOR = "simulator"
# The API client (tenantguard_client) talks to the product over HTTP only: it imports nothing of
# ours, and nothing of ours imports it (tests may).
CLIENT = "tenantguard_client"

# Sideways edges between stages, each through small named functions (architecture.md).
# compliance reads the posture checks and evaluates them on snapshots as of a date
# (detectors.posture: shipped_checks, evaluate_check, object_passes).
# response reads who was paged and the on-call responders' Slack ids (oncall.service.pages_of,
# oncall.store.load_document) to invite them to the incident channel, and moves an incident's
# status through its lifecycle when its Jira issue moves (timeline.lifecycle.transition).
# oncall resolves an incident from a page (Slack, SMS reply, e-mail link, keypress) through its
# lifecycle, in the action's transaction (timeline.lifecycle.transition_in).
STAGE_EDGES: frozenset[tuple[str, str]] = frozenset(
    {("compliance", "detectors"), ("response", "oncall"), ("response", "timeline"), ("oncall", "timeline")}
)

# Sideways edges at the top: the CLI serves the API application (with the console installed on it)
# and starts the simulator for `demo` and `simulator serve`; the console calls the API's service
# functions, request context and authenticators (never the reverse); the API never imports the CLI.
TOP_EDGES: frozenset[tuple[str, str]] = frozenset(
    {("cli", "api"), ("cli", "console"), ("console", "api"), ("cli", SIMULATOR)}
)

PACKAGES = (*LAYERS, SIMULATOR, CLIENT)


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path, root: Path) -> Iterable[tuple[int, str]]:
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module or ""
                continue
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])


def package_edges(root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs, each with the `file:line module` sites that make it."""
    edges: dict[tuple[str, str], list[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.relative_to(root).parts:
                continue
            for lineno, name in _imported_modules(path, root):
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    site = f"{path.relative_to(root)}:{lineno} {name}"
                    edges.setdefault((package, top), []).append(site)
    return edges


def forbidden_edges(edges: Mapping[tuple[str, str], list[str]]) -> list[str]:
    """Every edge the layering forbids, described with the import sites that make it."""
    problems = []
    for (importer, imported), sites in sorted(edges.items()):
        if (importer, imported) in TOP_EDGES:
            continue
        if importer == CLIENT or imported == CLIENT:
            reason = "the API client and the product meet over HTTP only"
        elif importer == SIMULATOR:
            reason = "the simulator imports nothing of the product"
        elif imported == SIMULATOR:
            reason = "only the CLI starts the simulator"
        elif LAYERS[imported] > LAYERS[importer]:
            reason = "upward edge"
        elif LAYERS[imported] == LAYERS[importer] and (importer, imported) not in STAGE_EDGES:
            reason = "sideways edge not in the allowed list"
        else:
            continue
        problems.append(f"{importer} -> {imported} ({reason}): " + "; ".join(sites[:5]))
    return problems


def package_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Cycles in the package graph (each reported once, starting at its smallest name)."""
    graph: dict[str, set[str]] = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    cycles: set[tuple[str, ...]] = set()

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                cycle = path[path.index(nxt) :]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            else:
                walk(nxt, [*path, nxt])

    for node in sorted(graph):
        walk(node, [node])
    return [list(cycle) for cycle in sorted(cycles)]


def test_no_package_imports_one_above_it_or_sideways_outside_the_allowed_edges() -> None:
    problems = forbidden_edges(package_edges())
    assert not problems, "layering broken (docs/architecture.md):\n  " + "\n  ".join(problems)


def test_no_cycle_between_packages() -> None:
    cycles = package_cycles(package_edges())
    assert not cycles, "package cycles: " + ", ".join(" -> ".join([*c, c[0]]) for c in cycles)


def test_the_allowed_stage_edges_form_no_cycle() -> None:
    assert not package_cycles(STAGE_EDGES)


def test_the_walk_sees_a_lazy_upward_import(tmp_path: Path) -> None:
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "core" / "late.py").write_text("def f():\n    from .. import x\n    import api.app\n")
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "__init__.py").write_text("from core import late\n")
    edges = package_edges(tmp_path)
    assert edges[("core", "api")] == ["core/late.py:3 api.app"]
    assert forbidden_edges(edges) == ["core -> api (upward edge): core/late.py:3 api.app"]
    assert package_cycles(edges) == [["api", "core"]]


@pytest.mark.parametrize(
    ("edge", "reason"),
    [
        (("detectors", "remediation"), "sideways edge not in the allowed list"),
        (("simulator", "core"), "the simulator imports nothing of the product"),
        (("timeline", "simulator"), "only the CLI starts the simulator"),
        (("providers", "collectors"), "upward edge"),
    ],
)
def test_each_kind_of_forbidden_edge_is_named(edge: tuple[str, str], reason: str) -> None:
    assert forbidden_edges({edge: ["x.py:1 y"]}) == [f"{edge[0]} -> {edge[1]} ({reason}): x.py:1 y"]
