"""Secret references (``env:VAR`` / ``file:/path``): validated when a connection is defined,
resolved only at the moment a client is built, never stored, logged or shown in clear.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from providers.errors import ConnectionConfigError, SecretUnavailable

REFERENCE_SCHEMES = ("env", "file")


def check_reference(name: str, ref: object) -> str:
    """Refuse anything that is not a reference, so a pasted secret never reaches the database."""
    if not isinstance(ref, str) or ":" not in ref:
        raise ConnectionConfigError(
            f"secret {name!r} must be a reference like 'env:VARIABLE' or 'file:/path/to/secret', "
            "not the secret itself"
        )
    scheme, _, target = ref.partition(":")
    if scheme not in REFERENCE_SCHEMES or not target:
        raise ConnectionConfigError(
            f"secret {name!r} has an unknown reference scheme {scheme!r}: use 'env:VARIABLE' or "
            "'file:/path/to/secret'"
        )
    return ref


def resolve_reference(name: str, ref: str) -> str:
    """The secret a reference points at, or SecretUnavailable saying which reference is broken."""
    scheme, _, target = check_reference(name, ref).partition(":")
    if scheme == "env":
        value = os.environ.get(target)
        if not value:
            raise SecretUnavailable(f"secret {name!r}: environment variable {target} is not set")
        return value
    path = Path(target).expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SecretUnavailable(f"secret {name!r}: cannot read {path} ({exc.strerror or exc})") from exc
    if not value:
        raise SecretUnavailable(f"secret {name!r}: {path} is empty")
    return value


class Secrets(Mapping[str, str]):
    """Resolved secrets for one connection; their repr never shows a value."""

    def __init__(self, refs: Mapping[str, str]) -> None:
        self._refs = dict(refs)
        self._cache: dict[str, str] = {}

    def __getitem__(self, name: str) -> str:
        if name not in self._refs:
            raise SecretUnavailable(
                f"secret {name!r} is not configured for this connection: add it under [secrets] "
                f'as {name} = "env:VARIABLE"'
            )
        if name not in self._cache:
            self._cache[name] = resolve_reference(name, self._refs[name])
        return self._cache[name]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self[name] if name in self._refs else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._refs)})"

    def forget(self, name: str) -> None:
        """Drop a resolved value so the next use reads the reference again (a rotated secret)."""
        self._cache.pop(name, None)

    def missing(self) -> dict[str, str]:
        """name -> why it cannot be resolved, for `connections test`."""
        problems: dict[str, str] = {}
        for name, ref in self._refs.items():
            try:
                resolve_reference(name, ref)
            except SecretUnavailable as exc:
                problems[name] = str(exc)
        return problems


# Config keys that decide where a connection's credentials are sent (or what it trusts to receive
# them): a caller who may change one of these may redirect the secrets to a host of their choice.
CREDENTIAL_DESTINATION_KEYS = frozenset(
    {
        "authority",
        "graph_base_url",
        "graph_beta_url",
        "management_base_url",
        "api_endpoint",
        "base_url",
        "audit_base_url",
        "proxy",
        "ca_bundle",
    }
)


class SecretAllowList:
    """Where references given by a caller (not the operator's connections file) may point: files
    under the operator's secrets directories, environment variables with the operator's prefixes."""

    def __init__(self, dirs: tuple[Path, ...], env_prefixes: tuple[str, ...]) -> None:
        self.dirs = tuple(Path(os.path.realpath(d)) for d in dirs)
        self.env_prefixes = tuple(p for p in env_prefixes if p)

    def refusal(self, name: str, ref: str) -> str | None:
        """Why `ref` may not be used, or None when it may."""
        scheme, _, target = check_reference(name, ref).partition(":")
        if scheme == "env":
            if any(target.startswith(prefix) for prefix in self.env_prefixes):
                return None
            allowed = ", ".join(f"{p}*" for p in self.env_prefixes) or "none (no prefix is configured)"
            return (
                f"secret {name!r}: environment variable {target} is not one the operator allows "
                f"(allowed: {allowed})"
            )
        # realpath: '..' and symbolic links cannot lead out of a secrets directory
        path = Path(os.path.realpath(Path(target).expanduser()))
        if any(path.is_relative_to(d) for d in self.dirs):
            return None
        allowed = ", ".join(str(d) for d in self.dirs) or "none"
        return f"secret {name!r}: {target} is not inside a secrets directory the operator allows ({allowed})"
