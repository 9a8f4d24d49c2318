"""E-mail transport: SMTP (plain, STARTTLS or implicit TLS) or, with no server, .eml files.

A transport only: no database, no Flask, no templates. `send` either hands the message over
or raises `MailError`, so a caller marks a reminder as sent only when it really left; a
retried message keeps its Message-ID (derived from a stable key) and so stays recognisable.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import socket
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any

SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_SENDER = "auditapp@localhost"

# Every character str.splitlines() breaks on: the email package splits on these too, so
# any of them in a header value could start a header of the attacker's choosing.
_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Only the plain dot-atom form: the address goes verbatim into the envelope and the To
# header, and this form cannot carry spaces, brackets, quotes or non-ASCII (which would need
# SMTPUTF8, which not every relay offers).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS_RE = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})*)")


class MailError(Exception):
    """A message could not be handed over; the text names the server and what went wrong."""

    def __init__(self, message: str, server: str, code: int | None = None):
        super().__init__(message)
        self.server = server
        self.code = code


def _check_line(value: str, what: str) -> str:
    """Return `value` when it holds no line break, else raise ValueError."""
    if any(ch in _LINE_BREAKS for ch in value):
        raise ValueError(f"{what} must not contain a line break: {value!r}")
    return value


def check_address(value: str, what: str = "address") -> str:
    """Return `value` when it is a plain ASCII address (local@domain), else raise ValueError."""
    _check_line(value, what)
    match = _ADDRESS_RE.fullmatch(value)
    if match is None or len(match["local"]) > 64 or len(value) > 254:
        raise ValueError(f"{what} is not a plain e-mail address (local@domain): {value!r}")
    return value


def key_digest(key: str) -> str:
    """The hex prefix of SHA-256(key) naming a message in its Message-ID and outbox file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class MailSettings:
    """Where mail goes: an SMTP server when `host` is set, else .eml files in `outbox`."""

    host: str | None = None
    port: int = 25
    security: str = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 10.0
    outbox: Path | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(f"SMTP security must be one of {SECURITY_MODES}: {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMTP port out of range: {self.port}")
        if self.timeout <= 0:
            raise ValueError(f"SMTP timeout must be positive: {self.timeout}")
        if self.username and not self.password:
            raise ValueError("SMTP username given without a password")
        # A password sent over a connection without TLS can be read by anyone on the path.
        if self.username and self.security == "none":
            raise ValueError("SMTP login needs security 'starttls' or 'ssl', not 'none'")
        name, address = parseaddr(self.sender)
        _check_line(name, "sender name")
        check_address(address, "sender")

    @classmethod
    def from_config(cls, config: Mapping[str, Any], instance_path: str) -> MailSettings:
        """Read the SMTP_* and MAIL_FROM keys; the outbox is <instance_path>/outbox."""
        security = str(config.get("SMTP_SECURITY") or "none").strip().lower()
        # Values may arrive as strings from AUDITAPP_* variables; empty means "not set".
        port = config.get("SMTP_PORT")
        timeout = config.get("SMTP_TIMEOUT")
        try:
            port = int(port) if port not in (None, "") else DEFAULT_PORTS.get(security, 25)
            timeout = float(timeout) if timeout not in (None, "") else 10.0
        except ValueError as exc:
            raise ValueError(f"SMTP_PORT or SMTP_TIMEOUT is not a number: {exc}") from exc
        return cls(
            host=config.get("SMTP_HOST") or None,
            port=port,
            security=security,
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            sender=config.get("MAIL_FROM") or DEFAULT_SENDER,
            timeout=timeout,
            outbox=Path(instance_path) / "outbox",
        )


@dataclass(frozen=True)
class Message:
    """One plain-text e-mail to one recipient; `message_id_key` is stable across retries."""

    to: str
    subject: str
    body: str
    message_id_key: str

    def __post_init__(self) -> None:
        check_address(self.to, "recipient")
        _check_line(self.subject, "subject")
        if not self.message_id_key:
            raise ValueError("message_id_key must not be empty")


class Mailer:
    """Builds messages and sends them through SMTP or writes them to the outbox folder."""

    def __init__(self, settings: MailSettings, ssl_context: ssl.SSLContext | None = None):
        """Use `ssl_context` to trust a private CA; the default trusts the system's CAs."""
        if settings.host is None and settings.outbox is None:
            raise ValueError("no SMTP host and no outbox folder: nowhere to send mail")
        self.settings = settings
        self.ssl_context = ssl_context

    def build(self, message: Message) -> EmailMessage:
        """The message as UTF-8 text/plain with From, To, Subject, Date and Message-ID."""
        name, address = parseaddr(self.settings.sender)
        local, domain = address.rsplit("@", 1)
        msg = EmailMessage(policy=policy.default)
        msg["From"] = Address(display_name=name, username=local, domain=domain)
        msg["To"] = message.to
        msg["Subject"] = message.subject  # encoded as RFC 2047 words when not ASCII
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = f"<{key_digest(message.message_id_key)}@auditapp>"
        # RFC 3834: tells autoresponders (out-of-office) not to answer a robot.
        msg["Auto-Submitted"] = "auto-generated"
        # base64 for Japanese text: 8bit needs 8BITMIME at every hop, and QP would triple it.
        cte = None if message.body.isascii() else "base64"
        msg.set_content(message.body, charset="utf-8", cte=cte)
        return msg

    def send(self, message: Message) -> str:
        """Send `message`; return "smtp" or the outbox file path; raise MailError on failure."""
        data = self.build(message).as_bytes(policy=policy.SMTP)
        if self.settings.host is None:
            return str(self._write_outbox(message, data))
        self._send_smtp(message.to, data)
        return "smtp"

    def _write_outbox(self, message: Message, data: bytes) -> Path:
        """Write the message as <outbox>/<UTC timestamp>-<key digest>.eml, atomically."""
        outbox = self.settings.outbox
        assert outbox is not None  # guaranteed by __init__ when host is None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = outbox / f"{stamp}-{key_digest(message.message_id_key)}.eml"
        try:
            outbox.mkdir(parents=True, exist_ok=True)
            # A reader of the outbox never sees a half-written .eml: write aside, then rename.
            fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise MailError(f"outbox {outbox}: cannot write message: {exc}", str(outbox)) from exc
        return path

    def _send_smtp(self, recipient: str, data: bytes) -> None:
        """Hand `data` to the SMTP server for `recipient`; raise MailError on any failure."""
        s = self.settings
        assert s.host is not None  # send() writes to the outbox when there is no host
        server = f"{s.host}:{s.port}"
        context = self.ssl_context or ssl.create_default_context()
        try:
            if s.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            try:
                if s.security == "starttls":
                    smtp.ehlo_or_helo_if_needed()
                    # Never fall back to clear text when TLS was asked for.
                    if not smtp.has_extn("starttls"):
                        raise MailError(
                            f"SMTP server {server}: does not offer STARTTLS; message not sent",
                            server,
                        )
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, s.password or "")
                _, address = parseaddr(s.sender)
                smtp.sendmail(address, [recipient], data)
            finally:
                _close(smtp)
        except (smtplib.SMTPException, OSError) as exc:
            what, code = _describe(exc, s)
            raise MailError(f"SMTP server {server}: {what}", server, code) from exc


def _close(smtp: smtplib.SMTP) -> None:
    """Say QUIT, ignoring failures: the message's fate was settled before this point."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply as one readable line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(text.split())}"


def _describe(exc: BaseException, s: MailSettings) -> tuple[str, int | None]:
    """What went wrong, in words, and the SMTP reply code when the server gave one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        recipient, (code, text) = next(iter(exc.recipients.items()))
        return f"recipient {recipient} refused: {_reply(code, text)}", code
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = _reply(exc.smtp_code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            what = f"login as {s.username!r} failed"
        elif isinstance(exc, smtplib.SMTPSenderRefused):
            what = f"sender {exc.sender} refused"
        elif isinstance(exc, smtplib.SMTPDataError):
            what = "message refused"
        else:
            what = "error reply"
        return f"{what}: {reply}", exc.smtp_code
    # smtplib reports a read that timed out as a disconnection; the cause is the timeout.
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within {s.timeout:g} s", None
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"connection closed by the server: {exc}", None
    if isinstance(exc, smtplib.SMTPException):
        return f"SMTP error: {exc}", None
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening, or a firewall)", None
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc}", None
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host name: {exc}", None
    return f"connection error: {exc}", None
