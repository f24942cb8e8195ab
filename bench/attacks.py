"""The outside review's attacks (issue 21), re-run against a real `tenantguard serve`: how many were
tried, how many got a 5xx, how many hung, and how many got an answer other than the refusal the fix
promises. Every figure's goal is 0.

The server is a fresh SQLite deployment with one principal per role, the default limits, a Slack
signing secret and an allow-listed secrets directory; `serve --no-scheduler` runs as its own
process. The attacks:

- alias bombs (the review's ~760-byte YAML, 9^9 values) to /rules/test and /rules/validate, 45 at
  once, while /health is timed (it must keep answering);
- absurdly nested and oversized JSON bodies;
- `secret_refs` naming server files and variables outside the allow-list, and provider URL
  overrides, from an admin;
- odd unsigned and odd signed Slack requests (non-UTF-8 bodies, odd timestamps), with the audit
  chain's length compared before and after;
- out-of-range times and NUL bytes in the query of every list endpoint;
- forged tokens (random, a real key id with a wrong secret, unsigned JWTs) and guessing from
  rotating X-Forwarded-For addresses (must be slowed to 429s);
- a sweep of every operation in the OpenAPI document x every role and no token, with an empty body
  (no 5xx; every answer carries the security headers);
- SIGTERM with requests in flight: serve must exit within its grace period plus a few seconds.

    python -m bench attacks          # the full run (also: python -m bench.attacks)
    python -m bench --quick attacks  # fewer repetitions
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Figure, print_table

AREA = "outside review re-run"
HANG_SECONDS = 30.0  # an answer slower than this is a hang (the request time limit is 60 s by default)
ROLES = ("viewer", "analyst", "approver", "auditor", "admin")
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "cache-control", "referrer-policy")
SLACK_SECRET = secrets.token_hex(16)


@dataclass
class Tally:
    """One attack's outcome: answers by status, 5xx, hangs, and answers other than the promised one."""

    name: str
    attempts: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: int = 0
    hangs: int = 0
    unexpected: list[str] = field(default_factory=list)

    def add(self, label: str, answer: httpx.Response | None, expected: Callable[[int], bool]) -> None:
        self.attempts += 1
        if answer is None:
            self.hangs += 1
            return
        self.statuses[answer.status_code] += 1
        if answer.status_code >= 500:
            self.server_errors += 1
        if not expected(answer.status_code):
            self.unexpected.append(f"{label}: {answer.status_code} {answer.text[:120]!r}")

    @property
    def failures(self) -> int:
        return self.server_errors + self.hangs + len(self.unexpected)


def _alias_bomb() -> str:
    anchors = ['  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        anchors.append(f"  l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return (
        "title: bomb\nid: 6f0c1f0e-0000-4000-8000-000000000001\nstatus: test\n"
        "logsource: {product: m365, service: audit}\n"
        "detection: {sel: {Operation: x}, condition: sel}\nlevel: low\n"
        "tenantguard:\n  anchors:\n" + "\n".join("  " + line for line in anchors) + "\n"
        "tests:\n  - name: boom\n    match: true\n    event: {x: *l8}\n"
    )


class Deployment:
    """A fresh data dir and database, principals for every role, and `serve` as its own process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        (self.data / "secrets").mkdir(parents=True)
        (self.data / "secrets" / "slack-bot").write_text("xoxb-allowed")
        self.env = dict(
            os.environ,
            TENANTGUARD_DATA_DIR=str(self.data),
            TENANTGUARD_DATABASE_URL=f"sqlite:///{root / 'attacks.db'}",
            TENANTGUARD_API_TOKEN_PEPPER=secrets.token_hex(32),
            TENANTGUARD_REMEDIATION_SLACK_SIGNING_SECRET_REF="env:TG_ATTACKS_SLACK_SECRET",
            TG_ATTACKS_SLACK_SECRET=SLACK_SECRET,
        )
        self.tokens = self._principals()
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def _principals(self) -> dict[str, str]:
        from api.principals.service import create_principal
        from api.tokens import load_pepper
        from core.audit import Actor
        from core.db import Database
        from core.settings import Settings

        saved = os.environ.copy()
        os.environ.update(self.env)
        try:
            settings = Settings()
            db = Database.from_settings(settings)
            db.upgrade()
            pepper = load_pepper(settings, settings.api)
            tokens = {}
            for role in ROLES:
                _, token = create_principal(
                    db, pepper, name=f"{role}1", role=role, actor=Actor.system("bench.attacks")
                )
                tokens[role] = token
            db.dispose()
            return tokens
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def start(self) -> None:
        from simulator.http import free_port

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = (self.root / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import run; run()", "serve", "--no-scheduler"]
            + ["--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited: {(self.root / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("serve never became healthy")

    def audit_length(self) -> int:
        import sqlite3

        with sqlite3.connect(self.root / "attacks.db") as connection:
            return int(connection.execute("SELECT count(*) FROM auditrecord").fetchone()[0])

    def client(self, role: str | None = None, **headers: str) -> httpx.Client:
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=HANG_SECONDS)


def _send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
    try:
        return client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        return None


def _raw(
    dep: Deployment, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> httpx.Response | None:
    """A POST written byte for byte on a socket: header values no client library would send."""
    import socket

    host, port = dep.url.removeprefix("http://").split(":")
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: " + host.encode(), b"Connection: close"]
    head += [name + b": " + value for name, value in headers]
    head.append(b"Content-Length: " + str(len(body)).encode())
    try:
        with socket.create_connection((host, int(port)), timeout=HANG_SECONDS) as conn:
            conn.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
    except TimeoutError:
        return None
    status_line, _, rest = answer.partition(b"\r\n")
    text = rest.partition(b"\r\n\r\n")[2]
    return httpx.Response(int(status_line.split()[1]), content=text)


def _refused(status: int) -> bool:
    return 400 <= status < 500


def _alias_bombs(dep: Deployment, at_once: int) -> tuple[Tally, Tally]:
    bombs, health = Tally("alias bombs to /rules/test, /rules/validate"), Tally("/health during the bombs")
    bomb = _alias_bomb()
    analyst = dep.client("analyst")
    with ThreadPoolExecutor(at_once + 1) as pool:
        futures = [
            (path, pool.submit(_send, analyst, "POST", path, json={"yaml": bomb}))
            for index in range(at_once)
            for path in (("/rules/test", "/rules/validate")[index % 2],)
        ]
        plain = httpx.Client(base_url=dep.url, timeout=5)
        while not all(f.done() for _, f in futures):
            health.add("/health", _send(plain, "GET", "/health"), lambda s: s == 200)
            time.sleep(0.2)
        for path, future in futures:
            bombs.add(path, future.result(), lambda s: s == 422)
    return bombs, health


def _bodies(dep: Deployment) -> Tally:
    tally = Tally("nested and oversized JSON bodies")
    analyst, admin = dep.client("analyst"), dep.client("admin")
    for depth in (80, 1_000, 10_000):
        nested = '{"yaml": "x", "event": ' + '{"x": ' * depth + "1" + "}" * depth + "}"
        tally.add(
            f"rules/test depth {depth}",
            _send(
                analyst, "POST", "/rules/test", content=nested, headers={"Content-Type": "application/json"}
            ),
            _refused,
        )
    big = b'{"name": "' + b"a" * (2 << 20) + b'"}'
    for path in ("/connections", "/rules/validate", "/suppressions"):
        tally.add(
            f"{path} 2 MiB",
            _send(admin, "POST", path, content=big, headers={"Content-Type": "application/json"}),
            lambda s: s == 413,
        )
    return tally


def _connections(dep: Deployment) -> Tally:
    tally = Tally("secret references and provider URLs from an admin")
    admin = dep.client("admin")

    def slack(refs: dict[str, str], config: dict[str, Any] | None = None) -> dict[str, Any]:
        name = f"grab-{secrets.token_hex(3)}"
        return {
            "name": name,
            "provider": "slack",
            "tenant": "T0001",
            "config": config or {},
            "secret_refs": refs,
        }

    for ref in (
        "file:/etc/passwd",
        f"file:{dep.data}/api-token-pepper",
        f"file:{dep.data}/secrets/../api-token-pepper",
        "env:TENANTGUARD_API_TOKEN_PEPPER",
        "env:TG_ATTACKS_SLACK_SECRET",
        "env:HOME",
    ):
        tally.add(
            ref, _send(admin, "POST", "/connections", json=slack({"bot_token": ref})), lambda s: s == 422
        )
    for config in (
        {"base_url": "http://attacker.invalid/api/"},
        {"proxy": "http://attacker.invalid:3128"},
        {"headers": {"Authorization": "Bearer xoxb-inline-secret"}},
    ):
        tally.add(
            str(config),
            _send(
                admin,
                "POST",
                "/connections",
                json=slack({"bot_token": f"file:{dep.data}/secrets/slack-bot"}, config),
            ),
            lambda s: s == 422,
        )
    return tally


def _slack(dep: Deployment) -> Tally:
    import hashlib
    import hmac

    tally = Tally("odd Slack requests (unsigned ones never reach the chain)")
    client = httpx.Client(base_url=dep.url, timeout=HANG_SECONDS)
    before = dep.audit_length()
    bodies = [b"\xff\xfe\x00payload=%ZZ", b"payload=" + b"\xc3" * 300, b"", b"payload=%7B%22type%22%3A1%7D"]
    stamps = ["²".encode("latin-1"), b"9" * 5000, b"-1", "１２３".encode(), b" 1700000000", b"1e9", b"\xff"]
    url = "/integrations/slack/interactions"
    for body in bodies:
        for stamp in stamps:
            headers = [(b"X-Slack-Request-Timestamp", stamp), (b"X-Slack-Signature", b"v0=00")]
            headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
            tally.add(f"unsigned, timestamp {stamp[:12]!r}", _raw(dep, url, headers, body), _refused)
    grown = dep.audit_length() - before
    if grown:
        tally.unexpected.append(f"unsigned requests grew the audit chain by {grown} records")
    for body in bodies:  # signed: Slack's own requests with bodies it never sends
        now = str(int(time.time()))
        digest = hmac.new(SLACK_SECRET.encode(), f"v0:{now}:".encode() + body, hashlib.sha256).hexdigest()
        signed = {
            "X-Slack-Request-Timestamp": now,
            "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        tally.add("signed, odd body", _send(client, "POST", url, content=body, headers=signed), _refused)
    return tally


def _list_paths(spec: dict[str, Any]) -> list[str]:
    return sorted(p for p, ops in spec["paths"].items() if "get" in ops and "{" not in p)


def _input_edges(dep: Deployment, spec: dict[str, Any]) -> Tally:
    tally = Tally("out-of-range times and NUL bytes in queries")
    analyst = dep.client("admin")
    values = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "a\x00b", "%00", "9" * 40)
    for path in _list_paths(spec):
        params = {p["name"] for p in spec["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}
        for name in sorted(params & {"since", "until", "at", "cursor", "person", "q", "limit", "rule_id"}):
            for value in values:
                answer = _send(analyst, "GET", path, params={name: value})
                tally.add(f"{path}?{name}={value!r}", answer, lambda s: s < 500)
    return tally


def _forgeries(dep: Deployment) -> tuple[Tally, Tally]:
    forged = Tally("forged tokens")
    real_key_id = dep.tokens["viewer"].split("_")[1]
    tokens = [
        f"tg_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}",
        f"tg_{real_key_id}_{secrets.token_urlsafe(32)}",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsInJvbGVzIjpbImFkbWluIl19.",
        ".",
        "tg_" + "A" * 5000,
    ]
    for token in tokens:
        client = httpx.Client(
            base_url=dep.url, headers={"Authorization": f"Bearer {token}"}, timeout=HANG_SECONDS
        )
        for path in ("/incidents", "/principals", "/audit/verify"):
            forged.add(path, _send(client, "GET", path), lambda s: s in (401, 429))
    guessing = Tally("token guessing from rotating X-Forwarded-For")
    for attempt in range(60):
        client = httpx.Client(
            base_url=dep.url,
            headers={
                "Authorization": f"Bearer tg_{real_key_id}_{secrets.token_urlsafe(32)}",
                "X-Forwarded-For": f"203.0.113.{attempt % 250}",
            },
            timeout=HANG_SECONDS,
        )
        guessing.add("guess", _send(client, "GET", "/incidents"), lambda s: s in (401, 429))
    if not guessing.statuses.get(429):
        guessing.unexpected.append("60 wrong tokens from 'different' addresses were never slowed (no 429)")
    return forged, guessing


def _concrete(path: str, value: str) -> str:
    return "/".join(value if part.startswith("{") else part for part in path.split("/"))


def _sweep(dep: Deployment, spec: dict[str, Any], ids: tuple[str, ...]) -> Tally:
    """Every operation x every role and no token, with each of `ids` in every path parameter."""
    tally = Tally("every operation x every role and no token, empty body")
    clients: list[tuple[str, httpx.Client]] = [(role, dep.client(role)) for role in ROLES]
    clients.append(("anonymous", httpx.Client(base_url=dep.url, timeout=HANG_SECONDS)))
    skip = {"/integrations/slack/interactions"}  # its own attack above
    calls = [
        (method.upper(), concrete)
        for path, operations in sorted(spec["paths"].items())
        if path not in skip
        for concrete in sorted({_concrete(path, value) for value in ids})
        for method in sorted(m for m in operations if m in ("get", "post", "put", "patch", "delete"))
    ]
    for method, concrete in calls:
        for who, client in clients:
            kwargs: dict[str, Any] = {} if method in ("GET", "DELETE") else {"json": {}}
            answer = _send(client, method, concrete, **kwargs)
            tally.add(f"{who} {method} {concrete}", answer, lambda s: s < 500)
            if answer is not None:
                missing = [h for h in SECURITY_HEADERS if h not in answer.headers]
                if missing:
                    tally.unexpected.append(f"{method} {concrete}: no {', '.join(missing)}")
    return tally


def _sigterm(dep: Deployment) -> Tally:
    tally = Tally("SIGTERM with requests in flight")
    assert dep.process is not None
    analyst = dep.client("analyst")
    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(_send, analyst, "POST", "/rules/test", json={"yaml": _alias_bomb()})
        time.sleep(0.2)
        began = time.monotonic()
        dep.process.send_signal(signal.SIGTERM)
        try:
            dep.process.wait(timeout=5.0 + 10)  # the default grace period (5 s) and room to exit
            tally.attempts += 1
            took = time.monotonic() - began
            tally.statuses[0] += 1
            if took > 15:
                tally.unexpected.append(f"serve took {took:.1f} s to stop")
        except subprocess.TimeoutExpired:
            tally.attempts += 1
            tally.hangs += 1
            dep.process.kill()
    return tally


def run_attacks(quick: bool = False) -> list[Tally]:
    with tempfile.TemporaryDirectory(prefix="tg-attacks-") as tmp:
        dep = Deployment(Path(tmp))
        dep.start()
        try:
            spec = httpx.get(f"{dep.url}/openapi.json", timeout=HANG_SECONDS).json()
            tallies: list[Tally] = []
            tallies.extend(_alias_bombs(dep, 10 if quick else 45))
            tallies.append(_bodies(dep))
            tallies.append(_connections(dep))
            tallies.append(_slack(dep))
            tallies.append(_input_edges(dep, spec))
            tallies.extend(_forgeries(dep))
            tallies.append(_sweep(dep, spec, ("1",) if quick else ("1", "0", "99999999999999999999", "%00")))
            tallies.append(_sigterm(dep))
            return tallies
        finally:
            if dep.process is not None and dep.process.poll() is None:
                dep.process.kill()
                dep.process.wait(10)


def figures(tallies: Iterable[Tally]) -> list[Figure]:
    out = []
    for t in tallies:
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(t.statuses.items()))
        out.append(
            Figure(
                AREA,
                f"{t.name} ({t.attempts} attempts; 5xx {t.server_errors}, hangs {t.hangs})",
                t.failures,
                "failed",
                goal="0",
                notes=statuses + ("; " + " | ".join(t.unexpected[:5]) if t.unexpected else ""),
            )
        )
    return out


def run(quick: bool = False) -> list[Figure]:
    tallies = run_attacks(quick)
    for t in tallies:
        for line in t.unexpected[:10]:
            print(f"  {t.name}: {line}", file=sys.stderr)
    return figures(tallies)


if __name__ == "__main__":
    print_table(run(quick="--quick" in sys.argv))
