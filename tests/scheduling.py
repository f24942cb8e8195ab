"""How pytest-xdist hands tests to its workers (`make test` runs the suite with ``-n 4``).

xdist's default (``--dist load``) sends tests one by one to whichever worker is free, so the
tests of one module end up on every worker, and a module-scoped fixture (the console's world: two
simulators, a cycle, ``serve`` and Chromium; the resilience suite's clean run) is built once per
worker that picked up any of its tests: up to four times. ``--dist loadfile`` would keep modules
together but makes every file one unit, so the suite ends on a few long files running alone.

This scheduler is xdist's own `LoadScopeScheduling` with a different unit of work: a whole file
where the file (or a conftest.py above it) defines a module-scoped fixture; one test at a time in
files with tests marked slow; runs of four consecutive tests elsewhere. Units are handed out in
collection order, and `order_heavy_first` puts the module-scoped files first, then the files with
slow tests, then the rest, so the long work starts at once and the short tests fill the gaps at
the end (handing out the largest units first left single slow tests running alone at the end).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

CHUNK = 4  # tests per unit in files of quick tests: few round trips to the controller
MODULE_SCOPED = re.compile(r"""scope\s*=\s*["'](module|package)["']""")
SLOW = re.compile(r"mark\.slow\b")
MODULE, SLOW_TESTS, QUICK = 0, 1, 2


@functools.cache
def file_kind(path: Path) -> int:
    """MODULE (a module-scoped fixture in the file or a conftest.py above it), SLOW_TESTS or QUICK."""

    def text(source: Path) -> str:
        return source.read_text(encoding="utf-8") if source.is_file() else ""

    tests = next((d for d in path.parents if d.name == "tests"), path.parent)
    sources = [path, *(d / "conftest.py" for d in path.parents if d == tests or tests in d.parents)]
    if any(MODULE_SCOPED.search(text(source)) for source in sources):
        return MODULE
    return SLOW_TESTS if SLOW.search(text(path)) else QUICK


def order_heavy_first(items: list[pytest.Item]) -> None:
    """Stable: module-scoped files, then files with slow tests, then the rest (a file stays whole)."""
    items.sort(key=lambda item: file_kind(Path(str(item.path))))


class ModuleScopedFirst(LoadScopeScheduling):
    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)  # type: ignore[arg-type]
        config.option.loadscopereorder = False  # collection order (order_heavy_first), not unit size
        self._root = Path(str(config.rootpath))
        self._units: dict[str, str] = {}

    def _unit_of_each(self, collection: Sequence[str]) -> None:
        counts: dict[str, int] = {}
        for nodeid in collection:
            path = nodeid.split("::", 1)[0]
            kind = file_kind(self._root / path)
            if kind == MODULE:
                self._units[nodeid] = path
                continue
            index = counts.get(path, 0)
            counts[path] = index + 1
            self._units[nodeid] = f"{path}#{index // (1 if kind == SLOW_TESTS else CHUNK)}"

    def _split_scope(self, nodeid: str) -> str:
        if not self._units and self.collection:
            self._unit_of_each(self.collection)
        return self._units.get(nodeid) or nodeid.split("::", 1)[0]
