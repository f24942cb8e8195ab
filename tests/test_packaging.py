"""The wheel carries what the installed product reads at run time: every file under the packages
it ships (the rule pack included) matches the package-data patterns in pyproject.toml."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"__pycache__"}


def _config() -> tuple[list[str], list[str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return setuptools["packages"]["find"]["include"], setuptools["package-data"]["*"]


def test_every_data_file_of_a_shipped_package_is_in_the_wheel() -> None:
    include, patterns = _config()
    tops = sorted({pattern.rstrip("*").rstrip(".") for pattern in include})
    missing = []
    for top in tops:
        assert (ROOT / top).is_dir(), f"pyproject.toml includes {top!r}, which is not a directory"
        for path in (ROOT / top).rglob("*"):
            if not path.is_file() or SKIPPED & set(path.parts) or path.suffix in (".py", ".pyc", ".md"):
                continue
            if not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == [], f"not matched by [tool.setuptools.package-data]: {missing[:20]}"


def test_the_rule_pack_ships_with_the_code_that_reads_it() -> None:
    include, _ = _config()
    # detectors, posture, playbooks and control mappings read rules/ beside the packages
    assert "rules*" in include
    assert any((ROOT / "rules" / "detections").rglob("*.yml"))
