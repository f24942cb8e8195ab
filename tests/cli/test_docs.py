"""docs/ stays true: its generated tables match the models they describe, and the links between
its pages lead somewhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_parts_of_docs_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from cli.main import run; run()", "config", "docs", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_generated_block_is_filled() -> None:
    for path in (ROOT / "docs").rglob("*.md"):
        for block in re.findall(
            r"<!-- generated: [\w:-]+ -->\n(.*?)<!-- end generated -->", path.read_text(), re.S
        ):
            assert block.strip(), f"{path}: an empty generated block"


def test_links_between_pages_lead_to_files() -> None:
    for path in [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md", ROOT / "CHANGELOG.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)\)", path.read_text()):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link {target}"
