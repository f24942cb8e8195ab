"""A loopback mail server for the intake tests: SMTP in (aiosmtpd), IMAP out (the IMAP4rev1
commands ``imaplib`` sends to read a mailbox: CAPABILITY, LOGIN, SELECT, UID SEARCH UNSEEN,
UID FETCH RFC822, UID STORE +FLAGS, NOOP, CLOSE, LOGOUT). Mail sent to it with ``smtplib`` lands
in one folder that the intake reads with ``imaplib``, over real sockets."""

from __future__ import annotations

import shlex
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller

from simulator.http import free_port


@dataclass
class Mail:
    raw: bytes
    seen: bool = False


@dataclass
class MailStore:
    user: str
    password: str
    folder: str = "INBOX"
    mails: list[Mail] = field(default_factory=list)
    logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        with self.lock:
            self.mails.append(Mail(bytes(envelope.original_content or envelope.content)))
        return "250 OK"


class _Imap(socketserver.StreamRequestHandler):
    store: MailStore

    def _send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        store = self.server.store  # type: ignore[attr-defined]
        self._send("* OK IMAP4rev1 test server ready")
        authed = selected = False
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
                if args[:2] != [store.user, store.password]:
                    self._send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                    continue
                authed = True
                store.logins += 1
            elif not authed:
                self._send(f"{tag} BAD log in first")
                continue
            elif verb in ("SELECT", "EXAMINE"):
                if args[:1] != [store.folder]:
                    self._send(f"{tag} NO [NONEXISTENT] no such mailbox")
                    continue
                selected = True
                with store.lock:
                    self._send(f"* {len(store.mails)} EXISTS")
                self._send("* 0 RECENT")
                self._send("* FLAGS (\\Seen)")
                self._send("* OK [UIDVALIDITY 1] UIDs valid")
            elif verb == "CLOSE":
                selected = False
            elif not selected:
                self._send(f"{tag} BAD select a mailbox first")
                continue
            elif verb == "UID SEARCH":
                with store.lock:
                    unseen = [str(i + 1) for i, m in enumerate(store.mails) if not m.seen]
                self._send(" ".join(["* SEARCH", *unseen]))
            elif verb == "UID FETCH":
                with store.lock:
                    index = int(args[0]) - 1
                    raw = store.mails[index].raw if 0 <= index < len(store.mails) else None
                if raw is not None:
                    self._send(f"* {index + 1} FETCH (UID {index + 1} RFC822 {{{len(raw)}}}")
                    self.wfile.write(raw)
                    self._send(")")
            elif verb == "UID STORE":
                with store.lock:
                    index = int(args[0]) - 1
                    if (
                        0 <= index < len(store.mails) and "seen" in " ".join(args[2:]).lower()
                    ):  # shlex drops the backslash
                        store.mails[index].seen = True
                self._send(f"* {index + 1} FETCH (UID {index + 1} FLAGS (\\Seen))")
            else:
                self._send(f"{tag} BAD unknown command {verb}")
                continue
            self._send(f"{tag} OK {verb} completed")


class _ImapServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def mail_server(user: str, password: str) -> Iterator[tuple[int, int, MailStore]]:
    """(SMTP port, IMAP port, the store) of a running loopback mail server."""
    store = MailStore(user, password)
    smtp = Controller(store, hostname="127.0.0.1", port=free_port())
    smtp.start()
    imap = _ImapServer(("127.0.0.1", 0), _Imap)
    imap.store = store  # type: ignore[attr-defined]
    thread = threading.Thread(target=imap.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(smtp.port), int(imap.server_address[1]), store
    finally:
        imap.shutdown()
        imap.server_close()
        smtp.stop()
