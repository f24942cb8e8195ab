"""The one Slack interactivity URL's front door: Slack's signature is checked on the raw bytes before
the body is read at all. A request no configured signing secret (remediation's, on-call's or response's) signed
is answered 401, counted in `tenantguard_auth_failures_total{reason="slack_unsigned"}` and
charged to its address's failed-authentication bucket (429 once spent) — never written to the audit
chain, which would let anyone on the internet grow it."""

from __future__ import annotations

from collections.abc import Mapping

from api.context import ApiState
from api.errors import RateLimited
from api.ratelimit import retry_after_seconds
from oncall.store import get_channels
from providers.credentials import resolve_reference
from providers.errors import SecretUnavailable
from providers.slack_signing import SlackSignatureInvalid, verify_slack_signature


def _signing_secrets(state: ApiState) -> list[str]:
    from response.config import load_config

    refs = [state.settings.remediation.slack_signing_secret_ref]
    with state.db.session(readonly=True) as session:
        refs.append(get_channels(session).slack_signing_secret_ref)
    refs.append(load_config(state.settings).channels.signing_secret_ref)  # response's message shortcut
    secrets = []
    for ref in refs:
        if ref:
            try:
                secrets.append(resolve_reference("slack_signing_secret", ref))
            except SecretUnavailable:
                continue  # the handler behind says so to the (signed) caller
    return secrets


def unsigned_refusal(state: ApiState, client: str, body: bytes, headers: Mapping[str, str]) -> str | None:
    """None when Slack signed the request; otherwise why not (after charging the address)."""
    try:
        verify_slack_signature(
            body, headers, _signing_secrets(state), max_skew=state.settings.remediation.slack_max_skew_seconds
        )
        return None
    except SlackSignatureInvalid as exc:
        state.metrics.auth_failures.labels("slack_unsigned").inc()
        wait = state.auth_failures.acquire(f"ip:{client}")
        if wait is not None:
            raise RateLimited(
                f"too many unsigned Slack requests from {client}; wait before retrying",
                retry_after_seconds(wait),
            ) from None
        return str(exc)
