"""`tenantguard simulator ...`: serve the built-in Microsoft 365 / Google Workspace / Slack simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="A local Microsoft 365, Google Workspace and Slack with attack scenarios and ground truth.",
    no_args_is_help=True,
)
# Top-level commands this area adds (name -> function), e.g. {"collect": collect}.
COMMANDS: dict[str, Callable[..., Any]] = {}

Scenario = Annotated[
    str,
    typer.Option(
        "--scenario", "-s", help="Scenario id (see `tenantguard simulator scenarios`) or a YAML file."
    ),
]
Users = Annotated[int | None, typer.Option(help="Number of people in the tenant (default: the scenario's).")]
Days = Annotated[int | None, typer.Option(help="Days of activity (default: the scenario's).")]
Seed = Annotated[int | None, typer.Option(help="Random seed: same seed, same world.")]
Start = Annotated[
    str | None, typer.Option("--start", help="ISO date-time the scenario starts (default: it ends now).")
]


@app.command()
def serve(
    scenario: Scenario = "account_takeover",
    port: Annotated[int, typer.Option(help="HTTP port (0 = any free port).")] = 0,
    tls_port: Annotated[
        int, typer.Option("--tls-port", help="HTTPS port for the Entra authority (0 = any).")
    ] = 0,
    faults: Annotated[
        str | None, typer.Option(help="Fault spec, e.g. 429=0.1,500=0.05,slow=0.02:1.5,403=m365:signins.")
    ] = None,
    users: Users = None,
    days: Days = None,
    seed: Seed = None,
    start: Start = None,
    write_connections: Annotated[
        Path | None,
        typer.Option(
            "--write-connections",
            help="Write a connections file for this simulator (secrets as file: references to 0600 "
            "files beside it); then `TENANTGUARD_CONNECTIONS_FILE=FILE tenantguard serve` watches it. "
            "Beside it: <stem>.oncall.yaml (e-mail paging through the simulator's SMTP server, for "
            "`tenantguard oncall apply`) and <stem>.sso.env (console SSO through its OpenID provider).",
        ),
    ] = None,
    interval: Annotated[
        int | None,
        typer.Option(help="With --write-connections: every stream's collection interval, seconds.", min=1),
    ] = None,
    notify_channel: Annotated[
        str,
        typer.Option(help="With --write-connections: the Slack channel incidents are announced in."),
    ] = "#security-ops",
) -> None:
    """Print one JSON line with the connection info, then serve until interrupted."""
    from simulator.launcher import serve as run

    on_ready = None
    if write_connections is not None:
        target = write_connections

        def on_ready(info: dict[str, Any]) -> None:
            from collectors.simulator_link import write_connections_file

            write_connections_file(info, target, interval=interval, notify_channel=notify_channel or None)
            typer.echo(f"connections for this simulator written to {target}", err=True)
            for written in write_mail_and_sso(info, target):
                typer.echo(f"  and {written}", err=True)

    run(
        scenario,
        port=port,
        tls_port=tls_port,
        faults=faults,
        users=users,
        days=days,
        seed=seed,
        start_at=start,
        on_ready=on_ready,
    )


def write_mail_and_sso(info: dict[str, Any], connections_file: Path) -> list[Path]:
    """Beside the connections file: an on-call `channels.smtp` pointing e-mail pages at the
    simulator's SMTP server (STARTTLS verified against its CA, its password a 0600 file), and the
    settings that make the console sign people in through its OpenID provider."""
    import yaml

    from collectors.simulator_link import file_placer

    target = Path(connections_file).resolve()
    written = []
    if "mail.smtp_port" in info:
        place = file_placer(target.with_name(f"{target.stem}.secrets"))
        channels = {
            "channels": {
                "smtp": {
                    "host": info["mail.smtp_host"],
                    "port": info["mail.smtp_port"],
                    "sender": f"oncall@{info.get('m365.domain') or 'tenantguard.local'}",
                    "starttls": True,
                    "ca_file": info["m365.ca_bundle"],
                    "username": info["mail.smtp_user"],
                    "password_ref": place("mail", "smtp_password", info["mail.smtp_password"]),
                }
            }
        }
        oncall = target.with_name(f"{target.stem}.oncall.yaml")
        oncall.write_text(
            "# E-mail paging through the simulator's SMTP server: `tenantguard oncall apply YOUR_FILES "
            f"{oncall.name}`\n" + yaml.safe_dump(channels, sort_keys=False)
        )
        written.append(oncall)
    if "oidc.issuer" in info:
        sso = target.with_name(f"{target.stem}.sso.env")
        sso.write_text(
            "# Console single sign-on through the simulator's OpenID provider: "
            f"`set -a; . {sso.name}; set +a; tenantguard serve`\n"
            f"TENANTGUARD_API_OIDC_ISSUER={info['oidc.issuer']}\n"
            f"TENANTGUARD_API_OIDC_CLIENT_ID={info['oidc.client_id']}\n"
        )
        written.append(sso)
    return written


@app.command()
def truth(
    scenario: Scenario = "account_takeover",
    users: Users = None,
    days: Days = None,
    seed: Seed = None,
    start: Start = None,
) -> None:
    """Print the scenario's ground truth (stories, steps, event ids, remediation) as JSON."""
    from simulator.launcher import truth as build

    typer.echo(json.dumps(build(scenario, users, days, seed, start), indent=2))


@app.command()
def scenarios() -> None:
    """List the shipped scenarios."""
    from simulator.scenario import available_scenarios, load_scenario

    for name in available_scenarios():
        typer.echo(f"{name:28} {load_scenario(name).title}")
