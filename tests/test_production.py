"""The production start: gunicorn with several workers serves, and no worker schedules."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

import pytest

GUNICORN = Path(sys.executable).parent / "gunicorn"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(
    not GUNICORN.exists() and not shutil.which("gunicorn"),
    reason="gunicorn is not installed (pip install -e '.[server]')",
)
def test_gunicorn_two_workers(tmp_path):
    """`auditapp init` then gunicorn -w 2: /healthz answers, sign-in works, no job runs."""
    env = os.environ | {
        "AUDITAPP_INSTANCE_PATH": str(tmp_path / "instance"),
        "AUDITAPP_SECRET_KEY": "production-test-key",
    }
    env.pop("AUDITAPP_SCHEDULER_IN_PROCESS", None)
    cli = Path(sys.executable).parent / "auditapp"
    init = subprocess.run(
        [str(cli), "init", "--admin-email", "root@example.jp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    password = re.search(r"password:\s+(\S+)", init.stdout).group(1)
    port = _port()
    server = subprocess.Popen(
        [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "auditapp:create_app()"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                body = response.read().decode()
                if response.status == 200:
                    break
            except OSError:
                time.sleep(0.3)
        assert '"database":true' in body.replace(" ", "")
        conn.request("GET", "/login")
        response = conn.getresponse()
        cookie = response.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
        conn.request(
            "POST",
            "/login",
            urllib.parse.urlencode(
                {"email": "root@example.jp", "password": password, "csrf_token": token}
            ),
            {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 302 and response.getheader("Location").endswith("/password")
        time.sleep(1)
        from auditapp import create_app
        from auditapp.extensions import db
        from auditapp.models import JobRun, SchedulerLock

        app = create_app(
            {"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": "production-test-key"}
        )
        with app.app_context():
            assert db.session.query(JobRun).count() == 0
            assert db.session.query(SchedulerLock).count() == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
