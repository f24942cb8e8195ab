"""The action catalogue: every fix tenantguard can make, per provider, described as data plus code.

Each :class:`ActionSpec` declares its target fields and parameters, the provider permission it
needs, whether it is reversible and by which inverse action, its blast radius, which target
fields make its idempotency key, and the read that verifies it. The code behind it is an
:class:`Operation` with four small steps — inspect (read the current state, refuse a missing
target), apply (the writes), verify (read back), and the inverse request for rollback.

Add an action by adding an ActionSpec to a provider module's ``ACTIONS``; a new provider adds its
module to this package, and the registry discovers it (pkgutil) — nothing lists the modules.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.models import Provider
from remediation.errors import CatalogueError


class Phase(StrEnum):
    """Incident-response phases, in the order a plan runs them."""

    CONTAIN = "contain"
    ERADICATE = "eradicate"
    RECOVER = "recover"

    @property
    def rank(self) -> int:
        return list(Phase).index(self)


class BlastRadius(StrEnum):
    """How much one run of the action can affect: one object, one person, one app, the whole tenant."""

    OBJECT = "single_object"
    USER = "single_user"
    APP = "app"
    TENANT = "tenant"

    @property
    def rank(self) -> int:
        return list(BlastRadius).index(self)


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


@dataclass(frozen=True)
class Field:
    """One target field or parameter an action accepts."""

    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Verification:
    """The outcome of reading the state back after a change."""

    ok: bool
    observed: dict[str, Any]


class Operation(ABC):
    """The provider calls behind one action. Methods get a gateway (see the providers: providers.m365.GraphGateway, ...)."""

    @abstractmethod
    def inspect(self, gw: Any, target: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Read the target's current state; raise TargetMissing when there is nothing to act on."""

    def satisfied(self, before: dict[str, Any], params: dict[str, Any]) -> bool:
        """True when the state is already what the action would make it (nothing to do)."""
        return False

    @abstractmethod
    def apply(self, gw: Any, target: dict[str, Any], params: dict[str, Any], before: dict[str, Any]) -> None:
        """Make the change (the only method that writes)."""

    @abstractmethod
    def verify(
        self, gw: Any, target: dict[str, Any], params: dict[str, Any], before: dict[str, Any]
    ) -> Verification:
        """Read the state back and say whether the change is in place."""

    def inverse_request(
        self, target: dict[str, Any], params: dict[str, Any], before: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Target and parameters for the inverse action that undoes this one (from the saved state)."""
        return dict(target), {}


@dataclass(frozen=True)
class ActionSpec:
    name: str
    provider: Provider
    title: str
    description: str
    target: tuple[Field, ...]
    permission: str
    reversible: bool
    blast_radius: BlastRadius
    idempotency_fields: tuple[str, ...]
    verification: str
    operation: Operation
    params: tuple[Field, ...] = ()
    # The action that undoes this one; None for a reversible action whose effect simply ends
    # (a revoked session: the user signs in again) — rollback then has nothing to call.
    inverse: str | None = None
    # Inverse-only actions (restore a deleted grant from its saved copy) are not offered by playbooks.
    rollback_only: bool = False
    # Targets the action must never touch (e.g. Microsoft's own apps): returns why, or None.
    guard: Callable[[dict[str, Any]], str | None] | None = None

    def check_target(self, target: dict[str, Any], params: dict[str, Any]) -> None:
        """Refuse targets and parameters the action does not declare, naming what is wrong."""
        allowed_target = {f.name for f in self.target}
        allowed_params = {f.name for f in self.params}
        missing = [f.name for f in self.target if f.required and not target.get(f.name)]
        unknown = sorted(set(target) - allowed_target) + sorted(set(params) - allowed_params)
        if missing:
            raise CatalogueError(
                f"{self.name} needs target field(s) {', '.join(missing)}; got {sorted(target)}"
            )
        if unknown:
            raise CatalogueError(
                f"{self.name} does not accept {', '.join(unknown)}; target fields: "
                f"{', '.join(sorted(allowed_target))}; parameters: {', '.join(sorted(allowed_params)) or 'none'}"
            )

    def idempotency_part(self, target: dict[str, Any]) -> str:
        return "|".join(f"{name}={str(target.get(name, '')).lower()}" for name in self.idempotency_fields)

    def describe(self) -> dict[str, Any]:
        """The declaration as plain data (for `tenantguard actions catalogue`, the API and docs)."""
        return {
            "name": self.name,
            "provider": str(self.provider),
            "title": self.title,
            "description": self.description,
            "target": [f.__dict__ for f in self.target],
            "params": [f.__dict__ for f in self.params],
            "permission": self.permission,
            "reversible": self.reversible,
            "inverse": self.inverse,
            "blast_radius": str(self.blast_radius),
            "idempotency_key": list(self.idempotency_fields),
            "verification": self.verification,
            "rollback_only": self.rollback_only,
        }


_REGISTRY: dict[str, ActionSpec] = {}


def register(*specs: ActionSpec) -> None:
    for spec in specs:
        if spec.name in _REGISTRY:
            raise CatalogueError(f"action {spec.name} is declared twice")
        _REGISTRY[spec.name] = spec


def get_action(name: str) -> ActionSpec:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CatalogueError(
            f"unknown action {name!r}; `tenantguard actions catalogue` lists the {len(_REGISTRY)} known ones"
        ) from None


def all_actions() -> list[ActionSpec]:
    _load()
    return sorted(_REGISTRY.values(), key=lambda spec: spec.name)


def _load() -> None:
    if _REGISTRY:
        return
    import remediation.catalogue as package

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            register(*importlib.import_module(f"{package.__name__}.{module.name}").ACTIONS)
    for spec in _REGISTRY.values():
        if spec.inverse and spec.inverse not in _REGISTRY:
            raise CatalogueError(f"{spec.name} names inverse {spec.inverse}, which is not in the catalogue")
