"""The vendor APIs the simulator serves, one module per API family, plus /_sim/ introspection."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.server import Simulator


def register_all(sim: Simulator) -> None:
    from simulator import mail, oidc
    from simulator.vendors import (
        admin,
        entra,
        google,
        graph,
        jira,
        management,
        okta,
        slack,
        slack_interactivity,
        twilio,
    )

    oidc.register(sim)  # /oidc/... on this port, before Entra's /{tenant}/.well-known/... matches it
    mail.register(sim)  # /_sim/mail (the SMTP/IMAP listeners start with Simulator.start_mail)
    for module in (admin, entra, graph, management, google, okta, slack, slack_interactivity, twilio, jira):
        module.register(sim)
