"""`tenantguard <command>` as its own process, started cheaply: the suite runs a few hundred CLI
commands and some sixty `serve` processes, and each new interpreter spent 1.5–5 CPU-seconds
importing SQLAlchemy, SQLModel's tables, pydantic, Alembic and FastAPI's routers before the
command's first line ran (about a fifth of the suite's time).

`run_cli` (a finished command, like `subprocess.run`) and `popen_cli` (a running one, like
`subprocess.Popen`: serve) fork the command from a stdlib `multiprocessing` forkserver that has
imported those modules once per pytest worker. The child is still a separate process with its own
memory, environment, working directory, standard streams, signals and exit status, running the real
entry point (`cli.main.run`, the console script's function): it shares nothing with the test or
with other commands but modules that read no environment and start no thread when imported. The
CLI modules themselves (cli.*, whose consoles read COLUMNS) are imported fresh in each child, as in
a new interpreter. Tests about the interpreter's own start stay on `subprocess`: the kill and
restart tests (tests/resilience), the workers, startup key refusals, the console script
(tests/cli/test_getting_started.py, the demo).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

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
    # what `serve` adds (checked the same way: no cli.* module, no thread, no environment read)
    "fastapi",
    "uvicorn",
    "api.app",
]

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def _child(args: list[str], env: dict[str, str], cwd: str | None, streams: tuple[str, str, str]) -> None:
    """In the forked process: become `python -c "from cli.main import run; run()" *args`."""
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    for fd, path in enumerate(streams):
        if fd == 2 and path == streams[1]:  # stderr=subprocess.STDOUT: one open file for both
            os.dup2(1, 2)
            continue
        opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_APPEND)
        os.dup2(opened, fd)
        os.close(opened)
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", newline="\n", write_through=unbuffered
    )
    sys.stderr = io.TextIOWrapper(  # line-buffered, as a new interpreter's stderr is
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        newline="\n",
        errors="backslashreplace",
        line_buffering=True,
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


class ForkedProcess:
    """What tests use of `subprocess.Popen` (pid, poll, wait, send_signal, terminate, kill,
    returncode) for a command forked by `popen_cli`."""

    def __init__(self, process: Any, args: list[str]) -> None:
        self._process = process
        self.args = args
        self.pid: int = process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and self._process.exitcode is not None:
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def popen_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: str | Path | IO[Any],
    stderr: str | Path | IO[Any] | int | None = None,
    cwd: str | Path | None = None,
) -> ForkedProcess:
    """Start one tenantguard command (`serve`, `simulator serve`, ...) in its own process, writing
    its output to the file `stdout` (a path or an open file; `stderr` the same, another file, or
    subprocess.STDOUT); returns at once, like `subprocess.Popen`."""
    out = _path_of(stdout)
    err = out if stderr is None or stderr == subprocess.STDOUT else _path_of(stderr)  # type: ignore[arg-type]
    process = _CONTEXT.Process(
        target=_child,
        args=(
            list(args),
            dict(os.environ if env is None else env),
            None if cwd is None else str(cwd),
            (os.devnull, out, err),
        ),
    )
    process.start()
    return ForkedProcess(process, ["tenantguard", *args])


def _path_of(target: str | Path | IO[Any]) -> str:
    if isinstance(target, str | Path):
        Path(target).touch()
        return str(target)
    target.flush()
    return str(target.name)
