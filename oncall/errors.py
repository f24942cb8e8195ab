"""What can go wrong in on-call, each saying which input is at fault."""

from __future__ import annotations

from core.errors import TenantguardError


class OncallError(TenantguardError):
    """Base of on-call errors."""


class OncallInputError(OncallError):
    """A configuration file, body or calendar that is not valid; the message names file and field."""


class OncallNotFound(OncallError):
    """A schedule, policy, escalation or acknowledgement token that does not exist."""


class DeliveryError(OncallError):
    """A page could not be delivered this time (it is retried)."""


class DeliveryUncertain(DeliveryError):
    """The provider did not answer in time: the page may or may not have gone out (it is
    reconciled with the provider before it is sent again)."""


class OncallRefused(OncallError):
    """A request deliberately not carried out (bad signature, unknown person, no permission); audited."""
