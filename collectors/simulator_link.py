"""Connection definitions for a running simulator (the demo, benchmarks and tests use this).

The simulator prints one JSON line with its endpoints and credentials. The secrets in it are
put into environment variables of this process and the definitions reference those variables
(`env:...`), the Google key by its file (`file:...`), so nothing secret reaches the database.
Worker processes started from this one inherit the variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from collectors.connections import ConnectionDefinition

ENV_PREFIX = "TENANTGUARD_SIM"


def _env_name(prefix: str, connection: str, secret: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", f"{prefix}_{connection}_{secret}".upper())


def _reference(prefix: str, connection: str, secret: str, value: Any) -> str:
    """Put a secret in this process's environment and return the reference to it."""
    name = _env_name(prefix, connection, secret)
    os.environ[name] = str(value)
    return f"env:{name}"


def connections_from_simulator(
    info: Mapping[str, Any],
    *,
    name_prefix: str = "sim",
    providers: Iterable[str] = ("m365", "google", "slack"),
    streams: Mapping[str, Iterable[str]] | None = None,
    conversations: bool = False,
    backfill: bool = True,
    intervals: Mapping[str, int] | None = None,
    extra_config: Mapping[str, Any] | None = None,
    env_prefix: str = ENV_PREFIX,
) -> list[ConnectionDefinition]:
    """One definition per provider, pointed at the simulator in `info`.

    `streams` limits the streams per provider; `conversations` selects every channel/mailbox the
    simulator has (an operator would name them); `backfill` starts at the simulated period's start.
    """
    definitions = []
    wanted = set(providers)
    common: dict[str, Any] = dict(extra_config or {})
    if backfill and info.get("start"):
        common.setdefault("backfill_start", info["start"])
    builders = {"m365": _m365, "google": _google, "slack": _slack}
    for provider in ("m365", "google", "slack"):
        if provider not in wanted:
            continue
        name = f"{name_prefix}-{provider}"
        config, secrets, tenant = builders[provider](info, name, env_prefix, conversations)
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


def _m365(info: Mapping[str, Any], name: str, env: str, conversations: bool) -> tuple[dict, dict, str]:
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
    secrets = {"client_secret": _reference(env, name, "client_secret", info["m365.client_secret"])}
    return {k: v for k, v in config.items() if v is not None}, secrets, str(info["m365.tenant_id"])


def _google(info: Mapping[str, Any], name: str, env: str, conversations: bool) -> tuple[dict, dict, str]:
    config: dict[str, Any] = {
        "api_endpoint": info["google.api_endpoint"],
        "subject": info["google.subject"],
        "customer_id": info.get("google.customer_id"),
    }
    if conversations:
        config["gmail_users"] = ["*"]
    secrets = {"service_account": f"file:{info['google.service_account_file']}"}
    tenant = str(info.get("google.domain") or info.get("google.customer_id") or "google")
    return {k: v for k, v in config.items() if v is not None}, secrets, tenant


def _slack(info: Mapping[str, Any], name: str, env: str, conversations: bool) -> tuple[dict, dict, str]:
    config: dict[str, Any] = {
        "base_url": info["slack.base_url"],
        "audit_base_url": info["slack.audit_base_url"],
        "team_id": info.get("slack.team_id"),
    }
    if conversations:
        config["slack_channels"] = ["*"]
    secrets = {
        "bot_token": _reference(env, name, "bot_token", info["slack.bot_token"]),
        "audit_token": _reference(env, name, "audit_token", info["slack.audit_token"]),
    }
    if info.get("slack.admin_token"):
        secrets["admin_token"] = _reference(env, name, "admin_token", info["slack.admin_token"])
    tenant = str(info.get("slack.enterprise_id") or info.get("slack.team_id") or "slack")
    return {k: v for k, v in config.items() if v is not None}, secrets, tenant
