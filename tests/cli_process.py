"""`tenantguard <command>` as its own process, started cheaply: the CLI tests run a few hundred
commands, and each new interpreter spent 1.5–3 CPU-seconds importing SQLAlchemy, SQLModel's
tables, pydantic and Alembic before the command's first line ran (about a fifth of the suite).

`run_cli` forks the command from a stdlib `multiprocessing` forkserver that has imported those
libraries once (per pytest worker). The child is still a separate process with its own memory,
environment, working directory, standard streams and exit status, running the real entry point
(`cli.main.run`, the console script's function): it shares nothing with the test or with other
commands but modules that read no environment when imported. The tenantguard CLI modules
themselves (cli.*, which build consoles from the environment) are imported fresh in each child,
exactly as in a new interpreter. Tests of the process itself (signals, kills, startup refusals,
`serve`) still start real interpreters with `subprocess`.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

# Imported by the forkserver before it forks anything: libraries and tenantguard modules whose
# import reads no environment variable and starts no thread (checked: core.* reads settings only
# when asked). cli.* is left out on purpose (cli.context sizes its consoles from COLUMNS).
PRELOAD = [
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlmodel",
    "pydantic",
    "pydantic_settings",
    "alembic.command",
    "typer",
    "typer.main",
    "rich.console",
    "rich.table",
    "orjson",
    "core.models",
    "core.db",
    "core.audit",
    "core.settings",
    "core.migrations.runner",
]

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def _child(args: list[str], env: dict[str, str], cwd: str | None, streams: tuple[str, str, str]) -> None:
    """In the forked process: become `python -c "from cli.main import run; run()" *args`."""
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    for fd, (path, flags) in enumerate(
        ((streams[0], os.O_RDONLY), (streams[1], os.O_WRONLY), (streams[2], os.O_WRONLY))
    ):
        opened = os.open(path, flags)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", newline="\n")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", newline="\n", errors="backslashreplace"
    )
    sys.argv = ["-c", *args]
    code = 0
    try:
        from cli.main import run

        run()
    except SystemExit as exc:  # what the interpreter does with it at the top level
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # an uncaught exception: its traceback on stderr and status 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # the handlers a normal interpreter exit runs (logging's flush, ...)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: str | Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """Run one tenantguard command in its own process; `env` is its whole environment (default:
    this process's). Returns what `subprocess.run(..., capture_output=True, text=True)` would."""
    with tempfile.TemporaryDirectory(prefix="tg-cli-") as scratch:
        stdin, stdout, stderr = (Path(scratch) / name for name in ("stdin", "stdout", "stderr"))
        stdin.write_text(input or "", encoding="utf-8")
        stdout.touch()
        stderr.touch()
        process = _CONTEXT.Process(
            target=_child,
            args=(
                list(args),
                dict(os.environ if env is None else env),
                None if cwd is None else str(cwd),
                (str(stdin), str(stdout), str(stderr)),
            ),
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join(10)
            raise subprocess.TimeoutExpired(
                ["tenantguard", *args], timeout, stdout.read_bytes(), stderr.read_bytes()
            )
        code = process.exitcode
        process.close()
        return subprocess.CompletedProcess(
            ["tenantguard", *args],
            code,
            stdout.read_text(encoding="utf-8", errors="replace"),
            stderr.read_text(encoding="utf-8", errors="replace"),
        )
