"""How pytest-xdist hands tests to its workers (`make test` runs the suite with ``-n 4``).

xdist's default (``--dist load``) sends tests one by one to whichever worker is free, so the
tests of one module end up on every worker, and a module-scoped fixture (the console's world: two
simulators, a cycle, ``serve`` and Chromium; the resilience suite's clean run) is built once per
worker that picked up any of its tests: up to four times. ``--dist loadfile`` would keep modules
together but makes every file one unit, so the suite ends on a few long files running alone.

This scheduler is xdist's own `LoadScopeScheduling` with a different unit of work: a whole file
where the file (or a conftest.py above it) defines a module-scoped fixture, small runs of
consecutive tests elsewhere. xdist hands out the largest units first, so the long modules start
early and the small units fill the gaps at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

CHUNK = 4  # tests per unit outside module-scoped files: few round trips to the controller
MODULE_SCOPED = re.compile(r"""scope\s*=\s*["'](module|package)["']""")


class ModuleScopedFirst(LoadScopeScheduling):
    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)  # type: ignore[arg-type]
        self._root = Path(str(config.rootpath))
        self._grouped: dict[str, bool] = {}
        self._units: dict[str, str] = {}

    def _module_scoped(self, path: str) -> bool:
        known = self._grouped.get(path)
        if known is None:
            file = self._root / path
            sources = [file, *(d / "conftest.py" for d in file.parents if self._root in d.parents)]
            known = any(
                source.is_file() and MODULE_SCOPED.search(source.read_text(encoding="utf-8"))
                for source in sources
            )
            self._grouped[path] = known
        return known

    def _split_scope(self, nodeid: str) -> str:
        unit = self._units.get(nodeid)
        if unit is not None:
            return unit
        if not self._units and self.collection:
            counts: dict[str, int] = {}
            for each in self.collection:
                path = each.split("::", 1)[0]
                if self._module_scoped(path):
                    self._units[each] = path
                else:
                    index = counts.get(path, 0)
                    counts[path] = index + 1
                    self._units[each] = f"{path}#{index // CHUNK}"
            unit = self._units.get(nodeid)
            if unit is not None:
                return unit
        return nodeid.split("::", 1)[0]
