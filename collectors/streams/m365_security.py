"""Microsoft 365 Defender alerts (Graph `security/alerts_v2`) as an event stream.

Alerts from Defender for Office 365, Cloud Apps, Endpoint, Identity and Entra ID Protection are
read by `lastUpdateDateTime` window (the documented `$filter`), paged by `@odata.nextLink`, and
stored once per alert id; the detection rules for this stream (rules/detections/m365/security_alert_*)
turn each into a finding of the alert's severity, so it joins the incident of the user and the
address its evidence names.
"""

from __future__ import annotations

from collectors.streams.base import StreamKind, StreamSpec, register
from collectors.streams.m365 import PROVIDER, graph_event_reader

PERMISSION = "SecurityAlert.Read.All"

register(
    StreamSpec(
        PROVIDER,
        "security_alerts",
        StreamKind.EVENTS,
        graph_event_reader("security/alerts_v2", "lastUpdateDateTime", PERMISSION),
        PERMISSION,
        300,
    )
)
