"""Faults on demand: throttling, server errors, slowness, broken pages, expired tokens, missing
permissions, duplicated and late-arriving events.

Spec strings (command line, scenario `faults:`, POST /_sim/faults) are comma-separated items::

    429=0.1,500=0.05,malformed=0.01,slow=0.02:1.5,403=m365:signins,late=0.05:3600@google
    retry_after=0:1,max_consecutive=2,seed=7

`KIND=P[:ARG][@SCOPE]`; a value that is not a number is a scope with probability 1. Scopes are a
provider (`m365`), a stream or resource (`m365:signins`, `google:login`, `slack:audit`,
`m365:users`) or a path prefix (`/graph/v1.0/users`). Token endpoints are only faulted when a
scope names them (`m365:token`, `google:token_endpoint`).

Decisions are a hash of (seed, kind, request, attempt): the same sequence of requests gets the
same faults, and after `max_consecutive` faulted attempts of one request the next one succeeds
(0 = no limit), so a client that retries always gets through unless asked otherwise.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from simulator.errors import FaultSpecError

STATUS_KINDS = ("401", "403", "429", "500", "502", "503", "504")
BODY_KINDS = ("malformed", "truncated")
OTHER_KINDS = ("slow", "duplicate", "late", "expire_tokens")
KINDS = STATUS_KINDS + BODY_KINDS + OTHER_KINDS
PERMANENT_KINDS = ("403",)
TOKEN_RESOURCES = ("token", "token_endpoint", "openid")


@dataclass(frozen=True)
class FaultRule:
    kind: str
    probability: float
    arg: float | None = None
    scope: str | None = None

    def applies_to(self, provider: str, resource: str, path: str) -> bool:
        if resource in TOKEN_RESOURCES and (
            self.scope is None or self.scope.split(":")[-1] not in TOKEN_RESOURCES
        ):
            return False
        if self.scope is None:
            return True
        if self.scope.startswith("/"):
            return path.startswith(self.scope)
        if ":" in self.scope:
            return self.scope == f"{provider}:{resource}"
        return self.scope == provider


@dataclass(frozen=True)
class FaultSpec:
    rules: tuple[FaultRule, ...] = ()
    retry_after: tuple[int, int] = (1, 1)
    max_consecutive: int = 2
    seed: int = 0
    text: str = ""

    def rule(self, kind: str) -> list[FaultRule]:
        return [r for r in self.rules if r.kind == kind]


def parse_faults(text: str | None, seed: int = 0) -> FaultSpec:
    """Parse a fault spec string; raise FaultSpecError naming the bad item."""
    text = (text or "").strip()
    rules: list[FaultRule] = []
    retry_after = (1, 1)
    max_consecutive = 2
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise FaultSpecError(
                f"fault item {item!r} needs KIND=VALUE (e.g. 429=0.1, slow=0.02:1.5, 403=m365:signins)"
            )
        try:
            if key == "retry_after":
                low, _, high = value.partition(":")
                retry_after = (int(low), int(high or low))
            elif key == "max_consecutive":
                max_consecutive = int(value)
            elif key == "seed":
                seed = int(value)
            elif key in KINDS:
                rules.append(_rule(key, value))
            else:
                raise FaultSpecError(
                    f"unknown fault {key!r} in {item!r}; kinds: {', '.join(KINDS)}, retry_after, max_consecutive, seed"
                )
        except ValueError:
            raise FaultSpecError(
                f"fault item {item!r}: expected a number where one is needed (e.g. slow=0.05:2)"
            ) from None
    return FaultSpec(tuple(rules), retry_after, max_consecutive, seed, text)


PROVIDERS = ("m365", "google", "slack", "okta", "twilio")


def _rule(kind: str, value: str) -> FaultRule:
    if kind == "expire_tokens" and value in ("now", "all"):
        return FaultRule(kind, 1.0, None, "now")
    numbers, _, scope = value.partition("@")
    if not _is_number(numbers.split(":")[0]):
        return FaultRule(kind, 1.0, None, _scope(kind, value))
    probability_text, _, arg_text = numbers.partition(":")
    probability = float(probability_text)
    if not 0 <= probability <= 1:
        raise FaultSpecError(f"fault {kind}={value}: probability must be between 0 and 1")
    return FaultRule(
        kind, probability, float(arg_text) if arg_text else None, _scope(kind, scope) if scope else None
    )


def _scope(kind: str, scope: str) -> str:
    if scope.startswith("/") or scope.split(":")[0] in PROVIDERS:
        return scope
    raise FaultSpecError(
        f"fault {kind}: scope {scope!r} must be a provider ({', '.join(PROVIDERS)}), provider:stream or a /path prefix"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Decision:
    status: int | None = None  # an error status to return instead of the real response
    expire_token: bool = False
    delay: float = 0.0
    body: str | None = None  # malformed | truncated


@dataclass
class Faults:
    """The active spec plus per-request attempt counters (so retries can succeed)."""

    spec: FaultSpec = field(default_factory=FaultSpec)
    _attempts: dict[str, int] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    fired: dict[str, int] = field(default_factory=dict)

    def set(self, spec: FaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._attempts.clear()
            self._failures.clear()

    def _chance(self, *parts: object) -> float:
        data = "\x1f".join(str(p) for p in (self.spec.seed, *parts)).encode()
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") / 2**64

    def decide(self, key: str, provider: str, resource: str, path: str) -> Decision:
        """What goes wrong with this request, if anything."""
        spec = self.spec
        if not spec.rules:
            return Decision()
        with self._lock:
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
            failures = self._failures.get(key, 0)
        decision = Decision()
        limited = spec.max_consecutive > 0 and failures >= spec.max_consecutive
        for rule in spec.rules:
            if not rule.applies_to(provider, resource, path):
                continue
            permanent = rule.kind in PERMANENT_KINDS and rule.probability >= 1
            if limited and not permanent and rule.kind not in ("slow",):
                continue
            if rule.kind in ("duplicate", "late") or (rule.kind == "expire_tokens" and rule.scope == "now"):
                continue
            if self._chance(rule.kind, key, attempt) >= rule.probability:
                continue
            if rule.kind == "slow":
                decision.delay = max(decision.delay, rule.arg if rule.arg is not None else 1.0)
            elif rule.kind == "expire_tokens":
                decision.expire_token = True
            elif rule.kind in BODY_KINDS and decision.body is None and decision.status is None:
                decision.body = rule.kind
            elif rule.kind in STATUS_KINDS and decision.status is None:
                decision.status = int(rule.kind)
        with self._lock:
            failed = decision.status is not None or decision.body is not None or decision.expire_token
            self._failures[key] = failures + 1 if failed else 0
            for name in (
                decision.status,
                decision.body,
                "expire_token" if decision.expire_token else None,
                "slow" if decision.delay else None,
            ):
                if name is not None:
                    self.fired[str(name)] = self.fired.get(str(name), 0) + 1
        return decision

    def retry_after(self, key: str) -> int:
        low, high = self.spec.retry_after
        if high <= low:
            return low
        return low + int(self._chance("retry-after", key) * (high - low + 1))

    def duplicate(self, provider: str, resource: str, path: str, key: str) -> bool:
        """Whether this page repeats the previous page's last item (overlapping pages)."""
        for rule in self.spec.rule("duplicate"):
            if (
                rule.applies_to(provider, resource, path)
                and self._chance("duplicate", key) < rule.probability
            ):
                self.fired["duplicate"] = self.fired.get("duplicate", 0) + 1
                return True
        return False

    def late_delay(self, provider: str, resource: str, uid: int) -> int:
        """Extra visibility delay (microseconds) for one event; the same event always gets the same."""
        for rule in self.spec.rule("late"):
            if (
                rule.applies_to(provider, resource, "")
                and self._chance("late", provider, resource, uid) < rule.probability
            ):
                return int((rule.arg if rule.arg is not None else 3600) * 1_000_000)
        return 0

    def has_late(self) -> bool:
        return bool(self.spec.rule("late"))
