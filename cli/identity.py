"""Who runs a CLI command that changes remediation: an authenticated person, or an explicit local operator.

A name typed after ``--as`` proves nothing (any shell user can type any name), so it is never taken
on trust. The person is established the way the API establishes it:

- an API token (``tg_...``), from ``--token-file``, ``TENANTGUARD_TOKEN`` or the one stored by
  ``tenantguard login``, checked against the principals table exactly as the API checks it (HMAC
  under the pepper, disabled principals refused);
- or, when single sign-on is configured, an ID token from the identity provider (verified with its
  signing keys like the API's bearer JWTs), acting as ``sso:<name>``;
- or, explicitly (``--local-operator`` / ``TENANTGUARD_LOCAL_OPERATOR=1``), the machine's own
  operator: recorded as ``local:<os user>`` in the audit chain, allowed what shell access to the
  database allows anyway, and never an approver (remediation.approvals refuses it).

``--as`` is still accepted, as an assertion: it must name the principal the credentials prove.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.audit import Actor
    from core.db import Database
    from core.permissions import Permission

TOKEN_ENV = "TENANTGUARD_TOKEN"
LOCAL_ENV = "TENANTGUARD_LOCAL_OPERATOR"
CREDENTIALS_ENV = "TENANTGUARD_CREDENTIALS_FILE"
# A token is about 56 characters, an ID token a few KiB: anything longer is not one.
_MAX_CREDENTIAL = 16_384
LOGIN_HINT = (
    "authenticate: `tenantguard login` (stores your API token for your user), TENANTGUARD_TOKEN, "
    "or --token-file; or act as the unauthenticated local operator with --local-operator "
    "(recorded as such, never an approver)"
)


def credentials_path() -> Path:
    """Where `tenantguard login` keeps the user's credential (mode 0600, in a 0700 directory)."""
    configured = os.environ.get(CREDENTIALS_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tenantguard" / "credentials"


def read_credential(path: Path) -> str:
    from core.errors import ConfigurationError

    try:
        text = path.read_text(encoding="utf-8", errors="strict")[: _MAX_CREDENTIAL + 1]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the credential in {path}: {exc}") from None
    value = text.strip()
    if not value or len(value) > _MAX_CREDENTIAL or any(c.isspace() for c in value):
        raise ConfigurationError(f"{path} does not hold one API token or ID token")
    return value


def store_credential(value: str) -> Path:
    """Write the credential for this user only (the file is replaced, never left world-readable)."""
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    temporary.replace(path)
    return path


def presented_credential(token_file: Path | None) -> str | None:
    """The credential this command presents: --token-file, else TENANTGUARD_TOKEN, else the stored login."""
    if token_file is not None:
        return read_credential(token_file)
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return from_env
    stored = credentials_path()
    return read_credential(stored) if stored.is_file() else None


def authenticate(db: Database, credential: str) -> Actor:
    """The person a credential proves, as the CLI actor (the API's own authenticators decide)."""
    from api.auth import OidcAuthenticator, TokenAuthenticator
    from api.errors import Unauthorized
    from api.tokens import load_pepper
    from cli.context import settings
    from core.audit import Actor, Channel
    from remediation.principals import SsoActor

    current = settings()
    if credential.startswith("tg_"):
        caller = TokenAuthenticator(db, load_pepper(current, current.api)).authenticate(credential)
        return Actor(caller.actor, Channel.CLI)
    if credential.count(".") == 2 and current.api.oidc_issuer:
        caller = OidcAuthenticator(current.api).authenticate(credential, audience=current.api.oidc_client_id)
        return SsoActor(f"sso:{caller.name}", Channel.CLI, roles=frozenset(caller.roles))
    raise Unauthorized(
        "the credential is not a tenantguard API token"
        + (" nor an ID token" if current.api.oidc_issuer else " (single sign-on is not configured)")
    )


def local_operator() -> Actor:
    from core.audit import Actor, Channel

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return Actor(f"local:{user}", Channel.CLI)


def _same(claimed: str, label: str) -> bool:
    name = claimed if ":" in claimed else f"principal:{claimed}"
    return name == label or (label.startswith("sso:") and name == f"principal:{label[4:]}")


def acting_person(
    db: Database, claimed: str | None, *, token_file: Path | None = None, local: bool = False
) -> Actor:
    """The authenticated actor of a mutating CLI command (see the module docstring); refuses otherwise."""
    from api.errors import Unauthorized

    local = local or os.environ.get(LOCAL_ENV, "") in ("1", "true", "yes")
    credential = presented_credential(token_file)
    if credential is not None:
        actor = authenticate(db, credential)
        if claimed and not _same(claimed, actor.name):
            raise Unauthorized(
                f"--as {claimed} is not who the credential proves ({actor.name}); "
                "a name is never taken on trust"
            )
        return actor
    if local:
        if claimed:
            raise Unauthorized(
                f"--as {claimed} cannot be combined with --local-operator: the local operator acts "
                "as local:<os user>, never as a principal"
            )
        return local_operator()
    if claimed:
        raise Unauthorized(f"--as {claimed} was given without credentials; {LOGIN_HINT}")
    raise Unauthorized(f"this command changes remediation and needs to know who you are; {LOGIN_HINT}")


def operator(db: Database) -> Actor:
    """Who runs an administrative command that must work before anyone has a token (creating the
    first principal): the person the presented credential proves, else the local operator."""
    credential = presented_credential(None)
    return authenticate(db, credential) if credential is not None else local_operator()


def roles_of(db: Database, actor: Actor) -> frozenset[str]:
    """The roles an authenticated CLI actor holds: its IdP's roles (SSO), its principal's role (a
    token), none for the local operator (or a disabled principal)."""
    from sqlmodel import select

    from core.models import ApiPrincipal
    from remediation.principals import SsoActor

    if isinstance(actor, SsoActor):
        return frozenset(actor.roles)
    scheme, _, name = actor.name.partition(":")
    if scheme != "principal":
        return frozenset()
    with db.session(readonly=True) as session:
        row = session.exec(select(ApiPrincipal).where(ApiPrincipal.name == name)).first()
    return frozenset() if row is None or row.disabled else frozenset({str(row.role)})


def cli_person(
    db: Database | None,
    claimed: str | None,
    *,
    permission: Permission | str | None = None,
    approves: bool = False,
    option: str = "--actor",
) -> Actor:
    """The actor of a CLI mutation outside remediation (incidents, compliance, privacy, holds,
    change windows, on-call, suppressions, ...), never a name taken on trust:

    - with a credential (`tenantguard login`, TENANTGUARD_TOKEN): the person it proves; `claimed`,
      when given, must be them, and they must hold `permission` in the permission matrix;
    - without one: the local operator (``local:<os user>``, recorded as such) — unless a name was
      claimed (the review's attack: any shell user typing any name), or the command approves
      something (`approves`: four eyes needs a person the system authenticated).

    `db` is opened only when a credential must be checked (None: the configured database)."""
    from api.errors import Unauthorized

    credential = presented_credential(None)
    if credential is None:
        if claimed:
            raise Unauthorized(f"{option} {claimed} was given without credentials; {LOGIN_HINT}")
        if approves:
            raise Unauthorized(
                "an approval needs an authenticated person (four eyes): the local operator never "
                f"approves; {LOGIN_HINT.split(';')[0]}"
            )
        return local_operator()
    if db is None:
        from cli.context import database

        db = database()
    actor = authenticate(db, credential)
    if claimed and not _same(claimed, actor.name):
        raise Unauthorized(
            f"{option} {claimed} is not who the credential proves ({actor.name}); a name is never taken on trust"
        )
    if permission is not None:
        from core.permissions import Permission, role_allows, roles_allowed

        permission = Permission(permission)
        held = roles_of(db, actor)
        if not any(role_allows(role, permission) for role in held):
            from api.errors import Forbidden

            raise Forbidden(
                f"{actor.name} has role {', '.join(sorted(held)) or 'none'}; {permission.value} needs one of "
                f"{', '.join(roles_allowed(permission))}"
            )
    return actor
