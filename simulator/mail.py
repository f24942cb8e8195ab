"""A loopback mail service: SMTP in (aiosmtpd), IMAP out, and the ground truth of what was delivered.

SMTP accepts mail for any recipient (it is the only mail host on loopback). It offers STARTTLS
with the simulator's server certificate (signed by the CA in ``m365.ca_bundle``, for 127.0.0.1)
and AUTH LOGIN/PLAIN for one account (``mail.smtp_user`` / ``mail.smtp_password``), only inside
TLS, as a submission server would; unauthenticated plain-text delivery on loopback stays open,
so a relay-style sender works too. Every accepted message is a :class:`Delivery` (envelope,
headers, whether it crossed inside TLS, who had logged in) — the ground truth, also at
``GET /_sim/mail``.

IMAP (IMAP4rev1, the commands ``imaplib`` sends to read a mailbox: CAPABILITY, LOGIN, SELECT,
UID SEARCH UNSEEN|ALL, UID FETCH RFC822, UID STORE +FLAGS, NOOP, CLOSE, LOGOUT) serves the
INBOX of each account added with :meth:`MailServer.add_account`: the mail addressed to the
account's addresses (all mail when it names none, a catch-all). UIDs are delivery ids; the
\\Seen flag is per account.

Used by the simulator (started with it for ``simulator serve``) and on its own by tests
(``MailServer().start()``, no world needed).
"""

from __future__ import annotations

import shlex
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from simulator.http import Request, Response, free_port

if TYPE_CHECKING:
    from simulator.server import Simulator


@dataclass
class Delivery:
    """One message the SMTP server accepted."""

    id: int
    at: float
    mail_from: str
    recipients: list[str]
    raw: bytes
    tls: bool
    login: str | None

    def header(self, name: str) -> str:
        """A header, RFC 2047 words decoded and folding undone."""
        return " ".join(str(message_from_bytes(self.raw, policy=policy.default).get(name, "")).split())

    def to_json(self, raw: bool = False) -> dict[str, Any]:
        message = message_from_bytes(self.raw, policy=policy.default)
        document: dict[str, Any] = {
            "id": self.id,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "mail_from": self.mail_from,
            "recipients": list(self.recipients),
            "from": str(message.get("From", "")),
            "to": [a for _, a in getaddresses([str(v) for v in message.get_all("To", [])])],
            "subject": " ".join(str(message.get("Subject", "")).split()),
            "message_id": str(message.get("Message-ID", "")),
            "size": len(self.raw),
            "tls": self.tls,
            "login": self.login,
        }
        if raw:
            document["raw"] = self.raw.decode("utf-8", "replace")
        return document


@dataclass
class Account:
    """An IMAP login and the addresses whose mail its INBOX holds (none: every message)."""

    user: str
    password: str
    addresses: tuple[str, ...] = ()
    seen: set[int] = field(default_factory=set)
    logins: int = 0

    def receives(self, delivery: Delivery) -> bool:
        return not self.addresses or any(r.lower() in self.addresses for r in delivery.recipients)


@dataclass
class InboxMail:
    """A message as one account's INBOX shows it."""

    delivery: Delivery
    seen: bool

    @property
    def raw(self) -> bytes:
        return self.delivery.raw


class MailServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        tls_context: ssl.SSLContext | None = None,
        smtp_user: str | None = None,
        smtp_password: str | None = None,
        require_starttls: bool = False,
    ) -> None:
        self.host = host
        self.require_starttls = require_starttls
        self.tls_context = tls_context
        self.smtp_user = smtp_user
        self.smtp_password = smtp_password
        self.lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self.accounts: dict[str, Account] = {}
        self.refused_logins: list[str] = []  # SMTP AUTH user names refused (wrong password)
        self.auth_attempts: list[tuple[str, bool, bool]] = []  # every SMTP AUTH: (user, inside TLS, accepted)
        self._smtp: Controller | None = None
        self._imap: _ImapServer | None = None
        self._imap_thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> MailServer:
        params: dict[str, Any] = {}
        if self.tls_context is not None:
            params.update(tls_context=self.tls_context, require_starttls=self.require_starttls)
        if self.smtp_user:
            params.update(authenticator=self._authenticate, auth_require_tls=self.tls_context is not None)
        self._smtp = Controller(_SmtpHandler(self), hostname=self.host, port=free_port(self.host), **params)
        self._smtp.start()
        self._imap = _ImapServer((self.host, 0), _Imap)
        self._imap.mail = self
        self._imap_thread = threading.Thread(
            target=self._imap.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="simulator-imap",
        )
        self._imap_thread.start()
        return self

    def stop(self) -> None:
        if self._imap is not None:
            self._imap.shutdown()
            self._imap.server_close()
            self._imap = None
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None

    def __enter__(self) -> MailServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def smtp_port(self) -> int:
        assert self._smtp is not None, "the mail server is not started"
        return int(self._smtp.port)

    @property
    def imap_port(self) -> int:
        assert self._imap is not None, "the mail server is not started"
        return int(self._imap.server_address[1])

    def info(self) -> dict[str, Any]:
        """The connection info keys (merged into the simulator's)."""
        info: dict[str, Any] = {
            "mail.smtp_host": self.host,
            "mail.smtp_port": self.smtp_port,
            "mail.smtp_starttls": self.tls_context is not None,
            "mail.imap_host": self.host,
            "mail.imap_port": self.imap_port,
        }
        if self.smtp_user:
            info.update({"mail.smtp_user": self.smtp_user, "mail.smtp_password": self.smtp_password})
        with self.lock:
            first = next(iter(self.accounts.values()), None)
        if first is not None:
            info.update({"mail.imap_user": first.user, "mail.imap_password": first.password})
        return info

    # ---------------------------------------------------------------- accounts and ground truth

    def add_account(self, user: str, password: str, addresses: list[str] | tuple[str, ...] = ()) -> Account:
        with self.lock:
            account = Account(user, password, tuple(a.lower() for a in addresses))
            self.accounts[user] = account
            return account

    def delivered(self, to: str | None = None) -> list[Delivery]:
        """Every accepted message, oldest first (only those to `to`, an envelope recipient)."""
        with self.lock:
            items = list(self.deliveries)
        if to is None:
            return items
        return [d for d in items if to.lower() in (r.lower() for r in d.recipients)]

    def inbox(self, user: str) -> list[InboxMail]:
        """`user`'s INBOX as IMAP shows it: the messages and their \\Seen flags."""
        with self.lock:
            account = self.accounts[user]
            return [InboxMail(d, d.id in account.seen) for d in self.deliveries if account.receives(d)]

    def logins(self, user: str) -> int:
        return self.accounts[user].logins

    def wait_for(self, count: int = 1, to: str | None = None, timeout: float = 60) -> list[Delivery]:
        """Block until at least `count` messages (to `to`) were delivered; they are returned."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.delivered(to)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} message(s) delivered to {to or 'anyone'}")
            time.sleep(0.02)  # polling a condition another thread makes true

    # ---------------------------------------------------------------- SMTP hooks

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8", "replace")
        ok = login == self.smtp_user and data.password.decode("utf-8", "replace") == self.smtp_password
        with self.lock:
            self.auth_attempts.append((login, session.ssl is not None, ok))
            if not ok:
                self.refused_logins.append(login)
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

    def _deliver(self, session: Any, envelope: Any) -> None:
        login = session.auth_data if isinstance(getattr(session, "auth_data", None), str) else None
        with self.lock:
            self.deliveries.append(
                Delivery(
                    id=len(self.deliveries) + 1,
                    at=time.time(),
                    mail_from=str(envelope.mail_from or ""),
                    recipients=[str(r) for r in envelope.rcpt_tos],
                    raw=bytes(envelope.original_content or envelope.content),
                    tls=session.ssl is not None,
                    login=login,
                )
            )


class _SmtpHandler:
    def __init__(self, mail: MailServer) -> None:
        self.mail = mail

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        self.mail._deliver(session, envelope)
        return "250 OK"


class _Imap(socketserver.StreamRequestHandler):
    server: _ImapServer

    def _send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:  # noqa: C901 - one IMAP session, command by command
        mail = self.server.mail
        self._send("* OK IMAP4rev1 tenantguard simulator ready")
        account: Account | None = None
        selected: list[Delivery] | None = None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            try:
                tag, command, *args = shlex.split(line.decode().strip())
            except ValueError:
                self._send("* BAD unparsable")
                continue
            verb = command.upper()
            if verb == "UID" and args:
                verb, args = f"UID {args[0].upper()}", args[1:]
            if verb == "CAPABILITY":
                self._send("* CAPABILITY IMAP4rev1 AUTH=PLAIN")
            elif verb == "NOOP":
                pass
            elif verb == "LOGOUT":
                self._send("* BYE logging out")
                self._send(f"{tag} OK LOGOUT completed")
                return
            elif verb == "LOGIN":
                with mail.lock:
                    found = mail.accounts.get(args[0]) if args else None
                    if found is None or len(args) < 2 or args[1] != found.password:
                        self._send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                        continue
                    found.logins += 1
                account = found
            elif account is None:
                self._send(f"{tag} BAD log in first")
                continue
            elif verb in ("SELECT", "EXAMINE"):
                if not args or args[0].upper() != "INBOX":
                    self._send(f"{tag} NO [NONEXISTENT] no such mailbox")
                    continue
                with mail.lock:
                    selected = [d for d in mail.deliveries if account.receives(d)]
                    next_uid = len(mail.deliveries) + 1
                self._send(f"* {len(selected)} EXISTS")
                self._send("* 0 RECENT")
                self._send("* FLAGS (\\Seen)")
                self._send("* OK [UIDVALIDITY 1] UIDs valid")
                self._send(f"* OK [UIDNEXT {next_uid}] predicted next UID")
            elif verb == "CLOSE":
                selected = None
            elif selected is None:
                self._send(f"{tag} BAD select a mailbox first")
                continue
            elif verb == "UID SEARCH":
                with mail.lock:
                    selected = [d for d in mail.deliveries if account.receives(d)]
                    unseen_only = "UNSEEN" in (a.upper() for a in args)
                    uids = [str(d.id) for d in selected if not (unseen_only and d.id in account.seen)]
                self._send(" ".join(["* SEARCH", *uids]))
            elif verb == "UID FETCH":
                for number, delivery in self._by_uid(selected, args[:1]):
                    self._send(f"* {number} FETCH (UID {delivery.id} RFC822 {{{len(delivery.raw)}}}")
                    self.wfile.write(delivery.raw)
                    self._send(")")
            elif verb == "UID STORE":
                flags = " ".join(args[1:]).lower()
                for number, delivery in self._by_uid(selected, args[:1]):
                    with mail.lock:
                        if "seen" in flags:  # shlex drops the backslash of \Seen
                            if flags.startswith("-"):
                                account.seen.discard(delivery.id)
                            else:
                                account.seen.add(delivery.id)
                        flag = "\\Seen" if delivery.id in account.seen else ""
                    self._send(f"* {number} FETCH (UID {delivery.id} FLAGS ({flag}))")
            else:
                self._send(f"{tag} BAD unknown command {verb}")
                continue
            self._send(f"{tag} OK {verb} completed")

    @staticmethod
    def _by_uid(selected: list[Delivery], spec: list[str]) -> Iterator[tuple[int, Delivery]]:
        """(sequence number, delivery) for a UID set such as ``3``, ``1,4`` or ``2:*``."""
        wanted: set[int] = set()
        highest = max((d.id for d in selected), default=0)
        for part in (spec[0] if spec else "").split(","):
            low, _, high = part.partition(":")
            try:
                start = highest if low == "*" else int(low)
                end = start if not high else highest if high == "*" else int(high)
            except ValueError:
                continue
            wanted.update(range(min(start, end), max(start, end) + 1))
        for number, delivery in enumerate(selected, start=1):
            if delivery.id in wanted:
                yield number, delivery


class _ImapServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    mail: MailServer


@contextmanager
def running(**options: Any) -> Iterator[MailServer]:
    """A started :class:`MailServer` (stopped on exit); `options` go to its constructor."""
    server = MailServer(**options).start()
    try:
        yield server
    finally:
        server.stop()


def register(sim: Simulator) -> None:
    """``GET /_sim/mail`` (``?to=ADDRESS``, ``?raw=1``): every delivered message, the ground truth;
    ``POST /_sim/mail/accounts {"user", "password", "addresses": [...]}`` adds an IMAP account."""

    def listing(request: Request) -> Response:
        mail = sim.mail
        if mail is None:
            return Response.json({"error": "the simulator's mail server is not started"}, 404)
        raw = request.arg("raw") in ("1", "true")
        return Response.json(
            {
                **mail.info(),
                "delivered": [d.to_json(raw) for d in mail.delivered(request.arg("to"))],
                "refused_logins": list(mail.refused_logins),
            }
        )

    def account(request: Request) -> Response:
        mail = sim.mail
        body = request.json()
        if mail is None:
            return Response.json({"error": "the simulator's mail server is not started"}, 404)
        if not isinstance(body, dict) or not body.get("user") or not body.get("password"):
            return Response.json({"error": 'expected {"user", "password", "addresses"?}'}, 400)
        made = mail.add_account(
            str(body["user"]), str(body["password"]), [str(a) for a in body.get("addresses") or []]
        )
        return Response.json({"user": made.user, "addresses": list(made.addresses)}, 201)

    sim.router.add("GET", r"/_sim/mail", listing, "sim", "mail")
    sim.router.add("POST", r"/_sim/mail/accounts", account, "sim", "mail")
