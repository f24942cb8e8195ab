"""Connection definitions for a running simulator (the demo, benchmarks and tests use this).

The simulator prints one JSON line with its endpoints and credentials. The secrets in it are
put into environment variables of this process and the definitions reference those variables
(`env:...`), the Google key by its file (`file:...`), so nothing secret reaches the database.
Worker processes started from this one inherit the variables.

`write_connections_file` is the operator's form (`tenantguard simulator serve
--write-connections FILE`): a TOML connections file whose secrets are `file:` references to
files beside it (mode 0600, in a 0700 directory), so that any process given
``TENANTGUARD_CONNECTIONS_FILE=FILE`` watches the simulator as it would a real tenant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from collectors.connections import ConnectionDefinition, definitions_to_toml

ENV_PREFIX = "TENANTGUARD_SIM"


def _env_name(prefix: str, connection: str, secret: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"{prefix}_{connection}_{secret}".upper())


# (connection name, secret name, value) -> the reference to where the value was put
SecretPlacer = Callable[[str, str, Any], str]


def environment_placer(prefix: str = ENV_PREFIX) -> SecretPlacer:
    """Put each secret in this process's environment and reference it as ``env:VARIABLE``."""

    def place(connection: str, secret: str, value: Any) -> str:
        name = _env_name(prefix, connection, secret)
        os.environ[name] = str(value)
        return f"env:{name}"

    return place


def file_placer(directory: Path) -> SecretPlacer:
    """Write each secret to its own file (0600) in `directory` (0700); reference it as ``file:``."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    def place(connection: str, secret: str, value: Any) -> str:
        target = directory / re.sub(r"[^A-Za-z0-9_.-]", "_", f"{connection}.{secret}")
        # a Path is a secret file (the Google key): its content is copied
        _write_private(target, value.read_text(encoding="utf-8") if isinstance(value, Path) else str(value))
        return f"file:{target}"

    return place


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (created 0600, never wider, even briefly)."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


def connections_from_simulator(
    info: Mapping[str, Any],
    *,
    name_prefix: str = "sim",
    providers: Iterable[str] = ("m365", "google", "slack", "okta"),
    streams: Mapping[str, Iterable[str]] | None = None,
    conversations: bool = False,
    backfill: bool = True,
    intervals: Mapping[str, int] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    env_prefix: str = ENV_PREFIX,
    place_secret: SecretPlacer | None = None,
) -> list[ConnectionDefinition]:
    """One definition per provider, pointed at the simulator in `info`.

    `streams` limits the streams per provider; `conversations` selects every channel/mailbox the
    simulator has (an operator would name them); `backfill` starts at the simulated period's start.
    `place_secret` decides where secrets go (default: this process's environment, `env_prefix`).
    """
    place = place_secret or environment_placer(env_prefix)
    definitions = []
    wanted = set(providers)
    common: dict[str, Any] = dict(extra_config or {})
    if backfill and info.get("start"):
        common.setdefault("backfill_start", info["start"])
    builders = {"m365": _m365, "google": _google, "slack": _slack, "okta": _okta}
    for provider in builders:
        if provider not in wanted or (provider == "okta" and "okta.org_url" not in info):
            continue
        name = f"{name_prefix}-{provider}"
        # the simulator's own Google key file is referenced as it is unless secrets are placed
        placer = place if place_secret is not None or provider != "google" else _as_file
        config, secrets, tenant = builders[provider](info, name, placer, conversations)
        chosen = (streams or {}).get(provider)
        definitions.append(
            ConnectionDefinition(
                name=name,
                provider=provider,
                tenant=tenant,
                config={**common, **config},
                secrets=secrets,
                streams=tuple(chosen) if chosen is not None else None,
                intervals={k: v for k, v in (intervals or {}).items()},
            )
        )
    return definitions


def _m365(
    info: Mapping[str, Any], name: str, place: SecretPlacer, conversations: bool
) -> tuple[dict, dict, str]:
    config: dict[str, Any] = {
        "authority": info["m365.authority"],
        "client_id": info["m365.client_id"],
        "graph_base_url": info["m365.graph_base_url"],
        "management_base_url": info["m365.management_base_url"],
        "ca_bundle": info.get("m365.ca_bundle"),
    }
    if info.get("m365.graph_beta_url"):
        config["graph_beta_url"] = info["m365.graph_beta_url"]
    if conversations:
        config.update({"teams_users": ["*"], "teams_channels": ["*"], "mailboxes": ["*"]})
    secrets = {"client_secret": place(name, "client_secret", info["m365.client_secret"])}
    return {k: v for k, v in config.items() if v is not None}, secrets, str(info["m365.tenant_id"])


def _google(
    info: Mapping[str, Any], name: str, place: SecretPlacer, conversations: bool
) -> tuple[dict, dict, str]:
    config: dict[str, Any] = {
        "api_endpoint": info["google.api_endpoint"],
        "subject": info["google.subject"],
        "customer_id": info.get("google.customer_id"),
    }
    if conversations:
        config["gmail_users"] = ["*"]
    secrets = {"service_account": place(name, "service_account", Path(info["google.service_account_file"]))}
    tenant = str(info.get("google.domain") or info.get("google.customer_id") or "google")
    return {k: v for k, v in config.items() if v is not None}, secrets, tenant


def _slack(
    info: Mapping[str, Any], name: str, place: SecretPlacer, conversations: bool
) -> tuple[dict, dict, str]:
    config: dict[str, Any] = {
        "base_url": info["slack.base_url"],
        "audit_base_url": info["slack.audit_base_url"],
        "team_id": info.get("slack.team_id"),
    }
    if conversations:
        config["slack_channels"] = ["*"]
    secrets = {
        "bot_token": place(name, "bot_token", info["slack.bot_token"]),
        "audit_token": place(name, "audit_token", info["slack.audit_token"]),
    }
    if info.get("slack.admin_token"):
        secrets["admin_token"] = place(name, "admin_token", info["slack.admin_token"])
    tenant = str(info.get("slack.enterprise_id") or info.get("slack.team_id") or "slack")
    return {k: v for k, v in config.items() if v is not None}, secrets, tenant


def _as_file(connection: str, secret: str, value: Any) -> str:
    return f"file:{value}"


def write_connections_file(
    info: Mapping[str, Any],
    path: Path,
    *,
    interval: int | None = None,
    notify_channel: str | None = None,
    **options: Any,
) -> list[ConnectionDefinition]:
    """Write a TOML connections file for the running simulator in `info`, secrets beside it.

    Secrets go to ``<FILE stem>.secrets/`` next to `path` (0700; one 0600 file per secret) and the
    file holds only ``file:`` references to them. `interval` sets every stream's collection
    interval (seconds; default: each stream's own); `notify_channel` is where the Slack connection
    announces incidents. Other `options` go to `connections_from_simulator`.
    """
    from collectors.streams.base import streams_for

    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    place = file_placer(path.with_name(f"{path.stem}.secrets"))
    definitions = connections_from_simulator(info, place_secret=place, **options)
    written = []
    for d in definitions:
        config = dict(d.config)
        if notify_channel and d.provider == "slack":
            config["notify_channel"] = notify_channel
        intervals = dict(d.intervals)
        if interval is not None:
            intervals = {spec.name: int(interval) for spec in streams_for(d.provider)}
        written.append(
            ConnectionDefinition(
                name=d.name,
                provider=d.provider,
                tenant=d.tenant,
                config=config,
                secrets=d.secrets,
                enabled=d.enabled,
                streams=d.streams,
                intervals=intervals,
            )
        )
    header = (
        "# Connections for a running tenantguard simulator (written by `tenantguard simulator serve"
        " --write-connections`).\n# Secrets are file: references to the 0600 files beside this one.\n\n"
    )
    _write_private(path, header + definitions_to_toml(written))
    return written


def _okta(
    info: Mapping[str, Any], name: str, place: SecretPlacer, conversations: bool
) -> tuple[dict, dict, str]:
    """The API token (SSWS); a service app instead takes secret private_key (okta.private_key_file)."""
    config: dict[str, Any] = {"org_url": info["okta.org_url"], "client_id": info.get("okta.client_id")}
    secrets = {"api_token": place(name, "api_token", info["okta.api_token"])}
    tenant = str(info.get("okta.domain") or "okta")
    return {k: v for k, v in config.items() if v is not None}, secrets, tenant
