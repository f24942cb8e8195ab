"""docs/getting-started.md, followed step by step: every shell block marked ``<!-- test: run -->``
is run, in order, by bash in an empty directory, with the installed `tenantguard` on PATH — the
commands exactly as a reader would paste them (against the simulator the page starts)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"


def rehearsal_blocks(text: str) -> list[str]:
    return re.findall(r"<!-- test: run -->\n```sh\n(.*?)```", text, re.S)


def test_the_getting_started_rehearsal_runs_as_written(tmp_path: Path) -> None:
    blocks = rehearsal_blocks(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4, "the guide lost its rehearsal blocks"
    script = "set -euo pipefail\n" + "\n".join(blocks)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TENANTGUARD_")
    }  # a reader's shell has none of the suite's settings
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=540
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    out = " ".join(result.stdout.split())
    assert "database at the newest schema" in out
    assert "ready" in out and "✗" not in out  # the doctor found nothing wrong
    assert "incident(s)" in out
    assert (tmp_path / "tg-data" / "tenantguard.db").is_file()
