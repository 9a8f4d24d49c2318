"""The production start: gunicorn with the shipped deploy/gunicorn.conf.py serves, no worker
schedules unless told to (and then one, once), and /healthz stays up under slow clients."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"
SECRET = "production-test-key-" + "k" * 32


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = os.environ | {
        "AUDITAPP_INSTANCE_PATH": str(tmp_path / "instance"),
        "AUDITAPP_SECRET_KEY": SECRET,
    }
    env.pop("AUDITAPP_SCHEDULER_IN_PROCESS", None)
    return env | {f"AUDITAPP_{k}": v for k, v in settings.items()}


def _init(env: dict[str, str]) -> str:
    """`auditapp init`; returns the first admin's one-time password."""
    init = subprocess.run(
        [str(BIN / "auditapp"), "init", "--admin-email", "root@example.jp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stderr
    return re.search(r"password:\s+(\S+)", init.stdout).group(1)


def _healthz(port: int, timeout: float = 2.0) -> tuple[int, str]:
    conn = HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


class Gunicorn:
    """gunicorn started with the shipped config (plus extra options) on a free port."""

    def __init__(self, env: dict[str, str], *options: str):
        self.port = _port()
        self.process = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", str(CONFIG), "-b", f"127.0.0.1:{self.port}", *options],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if _healthz(self.port)[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("gunicorn did not answer /healthz within 60 s")

    def stop(self) -> str:
        self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return out.decode(errors="replace")


def _jobs(tmp_path: Path):
    """(job runs, scheduler lock holders) recorded in the instance's database."""
    from auditapp import create_app
    from auditapp.extensions import db
    from auditapp.models import JobRun, SchedulerLock

    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "SECRET_KEY": SECRET})
    with app.app_context():
        runs = db.session.query(JobRun).count()
        holders = [lock.holder for lock in db.session.query(SchedulerLock)]
        db.session.remove()
        db.engine.dispose()
    return runs, holders


def test_gunicorn_two_workers(tmp_path):
    """`auditapp init` then the shipped config (2 workers): /healthz answers, sign-in works,
    and no worker runs a scheduler."""
    env = _env(tmp_path)
    password = _init(env)
    server = Gunicorn(env)
    try:
        status, body = _healthz(server.port)
        assert status == 200 and '"database":true' in body.replace(" ", "")
        conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/login")
        response = conn.getresponse()
        cookie = response.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
        conn.close()
        conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
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
        conn.close()
        assert response.status == 302 and response.getheader("Location").endswith("/password")
        time.sleep(1)
        assert _jobs(tmp_path) == (0, [])
    finally:
        log = server.stop()
    assert "Booting worker" in log and "development server" not in log


def test_in_process_scheduler_starts_once(tmp_path):
    """`make run`'s start (one worker, SCHEDULER_IN_PROCESS): one scheduler takes the lock
    and runs the start-up tick once, not again per request."""
    from auditapp import scheduler

    env = _env(tmp_path, SCHEDULER_IN_PROCESS="true")
    _init(env)
    server = Gunicorn(env, "--workers", "1")
    try:
        deadline = time.monotonic() + 60
        while _jobs(tmp_path)[0] < len(scheduler.JOBS) and time.monotonic() < deadline:
            time.sleep(0.5)
        for _ in range(10):
            assert _healthz(server.port)[0] == 200
        time.sleep(1)
        runs, holders = _jobs(tmp_path)
    finally:
        log = server.stop()
    assert runs == len(scheduler.JOBS), log
    assert len(holders) == 1 and holders[0].startswith("in-process"), holders
    assert log.count("Booting worker") == 1


class SlowClients:
    """`count` connections that never finish a request: half send their headers one byte
    every half second, half send complete headers of a 100 kB form POST and then its body
    one byte every half second. They stay open until stop()."""

    def __init__(self, port: int, count: int):
        self.sockets: list[list] = []
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                sock.sendall(
                    b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: 100000\r\n\r\nemail="
                )
                rest = b"a" * 99_994
            else:
                rest = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4000
            self.sockets.append([sock, rest])
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.wait(0.5):
            for item in self.sockets:
                sock, rest = item
                if sock is None:
                    continue
                try:
                    sock.send(rest[:1])
                    item[1] = rest[1:]
                except OSError:
                    item[0] = None
                    self.dropped += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock, _rest in self.sockets:
            if sock is not None:
                sock.close()


def test_healthz_stays_available_under_50_slow_clients(tmp_path):
    """Issue 11 item 7: with 50 slow connections open against the shipped config, at least
    95% of /healthz probes (one every 0.1 s for 10 s) are answered within 2 s.

    Measured the same way (bench/slow_clients.py): yesterday's `gunicorn -w 4` (sync)
    answered 0%, the shipped gthread workers without `worker_connections = threads` 37-55%.
    """
    env = _env(tmp_path)
    _init(env)
    server = Gunicorn(env)
    slow = SlowClients(server.port, 50)
    answered = probes = 0
    try:
        time.sleep(1)  # let every slow connection be accepted and start holding a thread
        end = time.monotonic() + 10
        while time.monotonic() < end:
            probes += 1
            start = time.monotonic()
            try:
                status, _body = _healthz(server.port, timeout=2)
                answered += status == 200 and time.monotonic() - start <= 2
            except OSError:
                pass
            time.sleep(0.1)
    finally:
        slow.stop()
        server.stop()
    print(f"/healthz under 50 slow clients: {answered}/{probes} answered within 2 s")
    assert answered / probes >= 0.95, f"{answered}/{probes} probes answered within 2 s"
    assert probes >= 30
