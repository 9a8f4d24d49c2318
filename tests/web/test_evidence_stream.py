"""Uploads are streamed: an upload aborted part-way leaves nothing behind."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

from werkzeug.serving import make_server

from auditapp.extensions import db
from auditapp.models import Evidence
from auditapp.services import catalog
from tests.factories import PASSWORD, make_user


def _serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _login(port: int) -> tuple[str, str]:
    """Sign in over HTTP; returns the session cookie and a CSRF token."""
    conn = HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/login")
    response = conn.getresponse()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
    body = urllib.parse.urlencode(
        {"email": "admin@example.jp", "password": PASSWORD, "csrf_token": token}
    )
    conn.request(
        "POST",
        "/login",
        body,
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    cookie = response.getheader("Set-Cookie").split(";")[0]
    conn.request("GET", "/", headers={"Cookie": cookie})
    page = conn.getresponse().read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    conn.close()
    return cookie, token


def test_aborted_upload_leaves_no_row_and_no_file(make_app):
    """A client that disconnects mid-body leaves no evidence row and no stored or temp file."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        make_user(db.session, roles=["admin"], email="admin@example.jp")
        db.session.commit()
    server = _serve(app)
    try:
        cookie, token = _login(server.server_port)
        boundary = "----auditappboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="link"\r\n\r\ncontrol:ORG-01\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n%PDF-1.4\n"
        ).encode()
        declared = len(head) + 8 * 1024 * 1024
        sock = socket.create_connection(("127.0.0.1", server.server_port))
        sock.sendall(
            (
                f"POST /evidence/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            + head
            + b"x" * (2 * 1024 * 1024)
        )
        store = app.extensions["evidence_store"]
        root = Path(app.config["EVIDENCE_PATH"])
        deadline = time.time() + 10
        spooled = []
        while time.time() < deadline and not spooled:
            spooled = [p for p in (root / "tmp").iterdir() if p.stat().st_size > 1024 * 1024]
            time.sleep(0.05)
        assert spooled, "the body should be streaming into a temporary file"
        sock.close()  # the client goes away mid-body
        deadline = time.time() + 10
        while time.time() < deadline and any(p.is_file() for p in (root / "tmp").iterdir()):
            time.sleep(0.1)
        assert not [p for p in root.rglob("*") if p.is_file()]
        assert list(store.iter_hashes()) == []
        with app.app_context():
            assert db.session.query(Evidence).count() == 0
    finally:
        server.shutdown()
