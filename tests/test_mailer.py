"""The mailer against a real SMTP server on 127.0.0.1 (aiosmtpd) and in outbox mode."""

from __future__ import annotations

import email
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from auditapp.mailer import Mailer, MailError, MailSettings, Message, key_digest

SUBJECT = "【リマインダー】アクセス権の棚卸し（期限まで3日）"
BODY = "山田 太郎 様\n\n点検「アクセス権の棚卸し」の期限は 2025年4月30日 です。\n.\n監査アプリ\n"
KEY = "reminder:due_3d:check:42:user:7"
TIMEOUT = 2.0


class Collector:
    """An aiosmtpd handler keeping every envelope it accepted."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        """Keep the envelope and accept the message."""
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class RefuseRecipient(Collector):
    """A server whose mailbox does not exist."""

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        """Refuse every recipient."""
        return "550 mailbox unavailable"


class RefuseData(Collector):
    """A server that takes the envelope, then refuses the content."""

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        """Refuse the message after reading it."""
        return "554 5.7.1 message rejected as spam"


class KeepSessions(Collector):
    """A collector that also keeps each sender's session (TLS and login state)."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[Session] = []

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        """Keep the session and accept the sender."""
        self.sessions.append(session)
        envelope.mail_from = address
        return "250 OK"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def received(envelope: Envelope) -> EmailMessage:
    """The message a server received, parsed."""
    return email.message_from_bytes(envelope.content, policy=policy.default)


def message(**overrides: str) -> Message:
    """A Japanese reminder to one recipient."""
    fields = {"to": "yamada@example.jp", "subject": SUBJECT, "body": BODY, "message_id_key": KEY}
    return Message(**(fields | overrides))


@pytest.fixture
def smtpd() -> Iterator[Callable[..., Controller]]:
    """Start aiosmtpd servers on 127.0.0.1 (free ports); all are stopped after the test."""
    started: list[Controller] = []

    def start(handler: Collector | None = None, **kwargs: Any) -> Controller:
        controller = Controller(
            handler or Collector(), hostname="127.0.0.1", port=free_port(), **kwargs
        )
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (made with the openssl tool)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The test server's TLS context."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client TLS context trusting only the test certificate."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def accept_only(login: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator accepting one login and password."""

    def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
        """Succeed only for that login and password."""
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == login
        ok = ok and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    return authenticate


def test_smtp_delivers_japanese_subject_and_body(smtpd):
    """A Japanese message reaches the server with the right envelope, headers and body."""
    handler = Collector()
    server = smtpd(handler)
    settings = MailSettings(
        host="127.0.0.1", port=server.port, sender="監査アプリ <audit@example.jp>", timeout=TIMEOUT
    )
    assert Mailer(settings).send(message()) == "smtp"

    [envelope] = handler.envelopes
    assert envelope.mail_from == "audit@example.jp"
    assert envelope.rcpt_tos == ["yamada@example.jp"]
    raw_headers = envelope.content.split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()  # the Japanese subject and name travel as RFC 2047 words
    msg = received(envelope)
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "yamada@example.jp"
    assert msg["From"].addresses[0].display_name == "監査アプリ"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"].datetime is not None
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content() == BODY  # including the lone "." line, dot-stuffed on the wire


def test_message_id_is_deterministic_per_key(smtpd):
    """The same key gives the same Message-ID on a retry; another key gives another one."""
    handler = Collector()
    server = smtpd(handler)
    mailer = Mailer(MailSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT))
    mailer.send(message())
    mailer.send(message())
    mailer.send(message(message_id_key="reminder:overdue:check:42:user:7"))

    ids = [received(e)["Message-ID"] for e in handler.envelopes]
    assert ids[0] == ids[1] == f"<{key_digest(KEY)}@auditapp>"
    assert re.fullmatch(r"<[0-9a-f]{32}@auditapp>", ids[2])
    assert ids[2] != ids[0]


def test_outbox_writes_a_parseable_eml_with_the_same_content(tmp_path):
    """With no host the message is written, whole, as an .eml file in a new outbox folder."""
    outbox = tmp_path / "instance" / "outbox"
    path = Path(Mailer(MailSettings(outbox=outbox)).send(message()))

    assert path.parent == outbox
    assert re.fullmatch(rf"\d{{8}}T\d{{6}}\.\d{{6}}Z-{key_digest(KEY)}\.eml", path.name)
    assert list(outbox.iterdir()) == [path]  # no temp file left behind
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["To"] == "yamada@example.jp"
    assert msg["From"] == "auditapp@localhost"
    assert msg["Subject"] == SUBJECT
    assert msg["Message-ID"] == f"<{key_digest(KEY)}@auditapp>"
    assert msg.get_content() == BODY


def test_outbox_unwritable_raises_mail_error(tmp_path):
    """An outbox that cannot be created gives MailError naming the folder."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MailError, match="cannot write message") as caught:
        Mailer(MailSettings(outbox=blocker / "outbox")).send(message())
    assert caught.value.server == str(blocker / "outbox")


def test_from_config_reads_keys_and_derives_outbox(tmp_path):
    """Config values (strings from the environment included) become typed settings."""
    settings = MailSettings.from_config(
        {
            "SMTP_HOST": "smtp.example.jp",
            "SMTP_SECURITY": "STARTTLS",
            "SMTP_USERNAME": "audit",
            "SMTP_PASSWORD": "s3cret",
            "MAIL_FROM": "audit@example.jp",
            "SMTP_TIMEOUT": "5",
        },
        str(tmp_path),
    )
    assert settings == MailSettings(
        host="smtp.example.jp",
        port=587,
        security="starttls",
        username="audit",
        password="s3cret",
        sender="audit@example.jp",
        timeout=5.0,
        outbox=tmp_path / "outbox",
    )
    assert "s3cret" not in repr(settings)
    empty = MailSettings.from_config({"SMTP_HOST": "", "SMTP_PORT": "2525"}, str(tmp_path))
    assert (empty.host, empty.port, empty.security) == (None, 2525, "none")


@pytest.mark.parametrize(
    "fields",
    [
        {"security": "tls"},
        {"port": 0},
        {"username": "audit", "password": "x"},  # a password in clear text over the network
        {"username": "audit", "security": "ssl"},  # no password
        {"sender": "not an address"},
    ],
)
def test_settings_refuse_unsafe_or_invalid_values(fields):
    """Settings that are invalid or would send a password in clear are refused."""
    with pytest.raises(ValueError):
        MailSettings(host="smtp.example.jp", **fields)


def test_mailer_needs_a_host_or_an_outbox():
    """A mailer with nowhere to send is refused when it is made, not when it sends."""
    with pytest.raises(ValueError, match="nowhere"):
        Mailer(MailSettings())


@pytest.mark.parametrize(
    "fields",
    [
        {"to": "yamada@example.jp\r\nBcc: everyone@example.jp"},
        {"to": "yamada@example.jp\n"},
        {"subject": "期限\r\nBcc: everyone@example.jp"},
        {"subject": "期限\u2028X-Injected: 1"},
        {"to": "山田@example.jp"},
        {"to": "Yamada <yamada@example.jp>"},
        {"to": "yamada@"},
        {"message_id_key": ""},
    ],
)
def test_header_injection_and_bad_recipients_are_refused(fields, smtpd):
    """Line breaks in the recipient or subject, and non-plain addresses, raise ValueError."""
    handler = Collector()
    server = smtpd(handler)
    mailer = Mailer(MailSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT))
    with pytest.raises(ValueError):
        mailer.send(message(**fields))
    assert handler.envelopes == []


def test_server_down_raises_mail_error_naming_host_and_port():
    """Nobody listening gives MailError with host:port and 'connection refused'."""
    port = free_port()
    mailer = Mailer(MailSettings(host="127.0.0.1", port=port, timeout=TIMEOUT))
    with pytest.raises(MailError, match=rf"127\.0\.0\.1:{port}: connection refused") as caught:
        mailer.send(message())
    assert (caught.value.server, caught.value.code) == (f"127.0.0.1:{port}", None)


def test_silent_server_times_out():
    """A server that accepts the connection but never greets gives MailError after the timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        mailer = Mailer(MailSettings(host="127.0.0.1", port=port, timeout=0.3))
        with pytest.raises(MailError, match=r"no answer within 0\.3 s"):
            mailer.send(message())


def test_refused_recipient_raises_mail_error_with_550(smtpd):
    """A 550 reply to RCPT gives MailError carrying the code and the server's text."""
    server = smtpd(RefuseRecipient())
    mailer = Mailer(MailSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT))
    with pytest.raises(MailError, match="550 mailbox unavailable") as caught:
        mailer.send(message())
    assert caught.value.code == 550
    assert "yamada@example.jp refused" in str(caught.value)


def test_refused_data_raises_mail_error_with_code(smtpd):
    """A 554 reply to DATA gives MailError with that code."""
    server = smtpd(RefuseData())
    mailer = Mailer(MailSettings(host="127.0.0.1", port=server.port, timeout=TIMEOUT))
    with pytest.raises(MailError, match="message refused: 554 5.7.1") as caught:
        mailer.send(message())
    assert caught.value.code == 554


def test_starttls_not_offered_is_not_sent_in_clear(smtpd):
    """Asked for STARTTLS, a server without it gets nothing and MailError is raised."""
    handler = Collector()
    server = smtpd(handler)
    settings = MailSettings(host="127.0.0.1", port=server.port, security="starttls", timeout=2)
    with pytest.raises(MailError, match="does not offer STARTTLS"):
        Mailer(settings).send(message())
    assert handler.envelopes == []


def test_starttls_with_login_delivers(smtpd, server_tls, client_tls):
    """STARTTLS then login, then delivery: the server saw an authenticated TLS session."""
    handler = KeepSessions()
    server = smtpd(handler, tls_context=server_tls, authenticator=accept_only("audit", "pw"))
    settings = MailSettings(
        host="127.0.0.1",
        port=server.port,
        security="starttls",
        username="audit",
        password="pw",
        timeout=TIMEOUT,
    )
    assert Mailer(settings, ssl_context=client_tls).send(message()) == "smtp"
    assert received(handler.envelopes[0])["Subject"] == SUBJECT
    [session] = handler.sessions
    assert session.authenticated and session.ssl is not None


def test_login_failure_raises_mail_error(smtpd, server_tls, client_tls):
    """A wrong password gives MailError saying the login failed, with the 535 code."""
    handler = Collector()
    server = smtpd(handler, tls_context=server_tls, authenticator=accept_only("audit", "pw"))
    settings = MailSettings(
        host="127.0.0.1",
        port=server.port,
        security="starttls",
        username="audit",
        password="wrong",
        timeout=TIMEOUT,
    )
    with pytest.raises(MailError, match="login as 'audit' failed: 535") as caught:
        Mailer(settings, ssl_context=client_tls).send(message())
    assert caught.value.code == 535
    assert handler.envelopes == []


def test_implicit_tls_delivers(smtpd, server_tls, client_tls):
    """security='ssl' speaks TLS from the first byte and delivers."""
    handler = Collector()
    server = smtpd(handler, ssl_context=server_tls)
    settings = MailSettings(host="127.0.0.1", port=server.port, security="ssl", timeout=TIMEOUT)
    assert Mailer(settings, ssl_context=client_tls).send(message()) == "smtp"
    assert received(handler.envelopes[0]).get_content() == BODY


def test_untrusted_certificate_raises_mail_error(smtpd, server_tls):
    """A certificate the client does not trust stops the send with a TLS MailError."""
    handler = Collector()
    server = smtpd(handler, ssl_context=server_tls)
    settings = MailSettings(host="127.0.0.1", port=server.port, security="ssl", timeout=TIMEOUT)
    with pytest.raises(MailError, match="TLS failed"):
        Mailer(settings).send(message())  # the system CAs do not know the test certificate
    assert handler.envelopes == []
