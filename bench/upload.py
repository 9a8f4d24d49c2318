"""Benchmark: upload then download a large evidence file through a real WSGI server.

A fresh instance is set up in a temporary folder, gunicorn (one sync worker) serves the
app on 127.0.0.1, and a streaming HTTP client uploads a file of random bytes with a PDF
header (POST /evidence/upload) and downloads it again (GET /evidence/<id>/download).
Baselines measured in the same run on the same disk: `cp` of the file (and `cp` plus
`sync` of the copy, since the app fsyncs what it stores) and `sha256sum` of it.

Targets (issue text): upload <= 1.2 x cp, download <= 1.2 x cp, the server's peak RSS
< 150 MB throughout. The script only measures: it exits 0 whether or not the targets
are met, and non-zero only when something fails (set-up, HTTP status, hash mismatch).

    .venv/bin/python bench/upload.py                 # 1 GiB (default)
    .venv/bin/python bench/upload.py --size-mib 64   # quick smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
# The project's venv; else the running interpreter's (e.g. for a copy of the tree elsewhere).
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
MIB = 1024 * 1024
CHUNK = MIB
MB = 1_000_000
RATIO_TARGET = 1.2
RSS_TARGET_MB = 150
SAMPLE_SECONDS = 0.05
# The first copy of a freshly written file is often several times slower than the next
# ones on this machine (ext4), so each baseline is the best of a few runs: the disk's limit.
BASELINE_RUNS = 3
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


class BenchError(RuntimeError):
    """The benchmark could not run (as opposed to a target being missed)."""


# --- the server's processes and their memory ---------------------------------------


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children)."""
    kids: list[int] = []
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            try:
                with open(f"{task.path}/children") as f:
                    kids.extend(int(x) for x in f.read().split())
            except OSError:
                continue
    except OSError:
        pass
    return kids


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def status_kib(pid: int, field: str) -> int | None:
    """A kB field (VmRSS, VmHWM) of /proc/<pid>/status, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False when not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mb(pid: int) -> float:
    return (status_kib(pid, "VmHWM") or 0) * 1024 / MB


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """Samples VmRSS of the server's process tree every 50 ms in a thread."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.peak_kib: dict[int, int] = {}  # per process
        self.peak_total_kib = 0  # the whole tree at one instant
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        total = 0
        for pid in process_tree(self.root_pid):
            kib = status_kib(pid, "VmRSS")
            if kib is None:
                continue
            total += kib
            self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), kib)
        self.peak_total_kib = max(self.peak_total_kib, total)
        self.samples += 1

    @property
    def peak_process_mb(self) -> float:
        return max(self.peak_kib.values(), default=0) * 1024 / MB

    @property
    def peak_total_mb(self) -> float:
        return self.peak_total_kib * 1024 / MB


# --- a small HTTP client with a cookie jar -----------------------------------------


class Client:
    """Plain http.client requests to the server, keeping its cookies (the session)."""

    def __init__(self, port: int):
        self.host, self.port = "127.0.0.1", port
        self.cookies: dict[str, str] = {}

    def connect(self, timeout: float = 900) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept-Language": "en"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers | (extra or {})

    def keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for raw in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self.connect(timeout=60)
        try:
            body = urlencode(form).encode() if form is not None else None
            extra = {"Content-Type": "application/x-www-form-urlencoded"} if body else None
            conn.request(method, path, body=body, headers=self.headers(extra))
            response = conn.getresponse()
            data = response.read()
            self.keep_cookies(response)
            return response.status, dict(response.headers), data
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        status, _, body = self.request("GET", path)
        match = CSRF_RE.search(body.decode("utf-8", "replace"))
        if status != 200 or not match:
            raise BenchError(f"GET {path}: status {status}, no csrf token")
        return match.group(1)

    def post_form(self, path: str, form: dict[str, str], token_from: str) -> tuple[int, str]:
        status, headers, body = self.request(
            "POST", path, form | {"csrf_token": self.csrf(token_from)}
        )
        if status not in (200, 302, 303):
            raise BenchError(f"POST {path}: status {status}: {body[:300]!r}")
        return status, headers.get("Location", "")


def sign_in(client: Client, email: str, one_time: str) -> None:
    """Sign in as the first admin and choose a new password (required at first sign-in)."""
    status, location = client.post_form(
        "/login", {"email": email, "password": one_time}, token_from="/login"
    )
    if status != 302:
        raise BenchError(f"sign-in failed (status {status})")
    if location.rstrip("/").endswith("/password"):
        new = "bench-" + secrets.token_urlsafe(18)
        status, location = client.post_form(
            "/password",
            {"current_password": one_time, "new_password": new, "confirm_password": new},
            token_from="/password",
        )
        if status != 302:
            raise BenchError(f"the password change failed (status {status})")
    status, _, _ = client.request("GET", "/")
    if status != 200:
        raise BenchError(f"GET / after sign-in: status {status}")


# --- upload and download ---------------------------------------------------------------


def upload(client: Client, path: Path, fields: dict[str, str]) -> dict:
    """POST the file as multipart/form-data with a known Content-Length, 1 MiB at a time."""
    boundary = "----auditapp-bench-" + secrets.token_hex(12)
    pre = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    pre += (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    post = f"\r\n--{boundary}--\r\n".encode()
    length = len(pre) + path.stat().st_size + len(post)
    conn = client.connect()
    try:
        conn.putrequest("POST", "/evidence/upload", skip_accept_encoding=True)
        headers = client.headers(
            {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length),
                "Accept": "application/json",
            }
        )
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        try:
            conn.send(pre)
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    conn.send(view[:n])
            conn.send(post)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # The server answered before reading the whole body (413, 400...): show it.
            try:
                response = conn.getresponse()
                early = f"status {response.status}: {response.read(500)!r}"
            except (OSError, http.client.HTTPException):
                early = "no response"
            raise BenchError(f"upload: the server closed the connection ({exc}); {early}") from exc
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 201:
        raise BenchError(f"upload: status {response.status}: {body[:500]!r}")
    return json.loads(body)


def download(client: Client, evidence_id: int, *, verify: bool = True) -> tuple[int, str]:
    """GET the file in 1 MiB reads into a hashing sink (or, unverified, only counted);
    returns (bytes, sha256 or "")."""
    conn = client.connect()
    try:
        conn.request("GET", f"/evidence/{evidence_id}/download", headers=client.headers())
        response = conn.getresponse()
        if response.status != 200:
            raise BenchError(f"download: status {response.status}: {response.read(500)!r}")
        digest = hashlib.sha256()
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        total = 0
        while n := response.readinto(buf):
            if verify:
                digest.update(view[:n])
            total += n
    finally:
        conn.close()
    return total, digest.hexdigest() if verify else ""


# --- set-up ------------------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    """Random bytes after a PDF header, written 1 MiB at a time and fsynced; its sha256."""
    digest = hashlib.sha256()
    written = 0
    with open(path, "wb", buffering=0) as f:
        header = b"%PDF-1.4\n"
        f.write(header)
        digest.update(header)
        written = len(header)
        while written < size:
            chunk = os.urandom(min(CHUNK, size - written))
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
        os.fsync(f.fileno())
    return digest.hexdigest()


def runs(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def wait_healthy(client: Client, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"gunicorn exited ({server.returncode}):\n{log.read_text()}")
        try:
            status, _, _ = client.request("GET", "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not become healthy in 60 s:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- the benchmark ------------------------------------------------------------------------


def bench(size_mib: int, work: Path) -> None:
    size = size_mib * MIB
    instance = work / "instance"
    instance.mkdir()
    (instance / "config.py").write_text(f"SECRET_KEY = {secrets.token_hex(32)!r}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAPP_")}
    env |= {
        "AUDITAPP_INSTANCE_PATH": str(instance),
        "AUDITAPP_MAX_CONTENT_LENGTH": str(size + MIB),
        # Measure the code of this tree, not whatever the venv's editable install points to.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }

    out = run([str(BIN / "auditapp"), "init"], env)
    email = re.search(r"admin login: (\S+)", out)
    password = re.search(r"password:\s+(\S+)", out)
    if not email or not password:
        raise BenchError(f"could not read the admin's login from `auditapp init`:\n{out}")

    source = work / "bench.pdf"
    print(f"writing {size_mib} MiB test file {source} ...", flush=True)
    expected = make_file(source, size)
    subprocess.run(["sync"], check=True)

    copy = work / "copy.pdf"
    print(f"baselines: cp, cp + sync, sha256sum (best of {BASELINE_RUNS}) ...", flush=True)
    cp_runs, cp_sync_runs, sha_runs = [], [], []
    for _ in range(BASELINE_RUNS):
        cp_runs.append(timed(["cp", str(source), str(copy)]))
        subprocess.run(["sync"], check=True)
        copy.unlink()
        cp_sync_runs.append(timed(["sh", "-c", f'cp "{source}" "{copy}" && sync "{copy}"']))
        copy.unlink()
        sha_runs.append(timed(["sha256sum", str(source)]))
    subprocess.run(["sync"], check=True)
    t_cp, t_cp_sync, t_sha = min(cp_runs), min(cp_sync_runs), min(sha_runs)

    port = free_port()
    log = work / "gunicorn.log"
    with open(log, "wb") as log_file:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "600",
                "--no-control-socket",  # else one is made under ~/.gunicorn
                "auditapp:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        client = Client(port)
        wait_healthy(client, server, log)
        sign_in(client, email.group(1), password.group(1))
        workers = [p for p in process_tree(server.pid) if p != server.pid]
        if len(workers) != 1:
            raise BenchError(f"expected one gunicorn worker, found {workers}")
        worker = workers[0]
        idle_mb = (status_kib(worker, "VmRSS") or 0) * 1024 / MB
        setup_hwm = hwm_mb(worker)  # start-up and sign-in (scrypt password hashing)

        print("upload ...", flush=True)
        token = client.csrf("/")
        fields = {"csrf_token": token, "link": "control:ORG-01", "description": "bench"}
        cpu0 = cpu_seconds(worker)
        hwm_ok = reset_hwm(worker)
        with RssSampler(server.pid) as rss_up:
            start = time.perf_counter()
            answer = upload(client, source, fields)
            t_up = time.perf_counter() - start
        cpu_up = cpu_seconds(worker) - cpu0
        hwm_up = hwm_mb(worker)
        if answer.get("sha256") != expected:
            raise BenchError(f"upload: server hash {answer.get('sha256')} != {expected}")
        stored = instance / "evidence" / expected[:2] / expected[2:4] / expected
        if not stored.is_file() or stored.stat().st_size != size:
            raise BenchError(f"upload: {stored} missing or of the wrong size")
        leftovers = list((instance / "evidence" / "tmp").iterdir())
        if leftovers:
            raise BenchError(f"upload: temp files left behind: {leftovers}")
        subprocess.run(["sync"], check=True)

        print("download ...", flush=True)
        cpu0 = cpu_seconds(worker)
        hwm_ok = reset_hwm(worker) and hwm_ok
        with RssSampler(server.pid) as rss_down:
            start = time.perf_counter()
            got, digest = download(client, answer["id"])
            t_down = time.perf_counter() - start
        cpu_down = cpu_seconds(worker) - cpu0
        if got != size or digest != expected:
            raise BenchError(f"download: {got} bytes, sha256 {digest}; expected {expected}")
        hwm_down = hwm_mb(worker)

        # Context: the same download without the client's hashing (bytes only counted).
        start = time.perf_counter()
        got, _ = download(client, answer["id"], verify=False)
        t_down_raw = time.perf_counter() - start
        if got != size:
            raise BenchError(f"download (unverified): {got} bytes, expected {size}")
        master_mb = hwm_mb(server.pid)
    finally:
        stop(server)

    t_cp_again = timed(["cp", str(source), str(copy)])
    copy.unlink()

    # "Throughout": the phases, and also start-up and sign-in (setup_hwm).
    rss_peak = max(
        setup_hwm, rss_up.peak_process_mb, rss_down.peak_process_mb, hwm_up, hwm_down, master_mb
    )
    hwm_note = "per phase" if hwm_ok else "lifetime: clear_refs refused"
    rows = [
        ("file", f"{size_mib} MiB ({size} bytes), sha256 {expected[:16]}..."),
        ("cp", f"{t_cp:8.2f} s  {size / MIB / t_cp:7.0f} MiB/s  (runs {runs(cp_runs)})"),
        (
            "cp + sync",
            f"{t_cp_sync:8.2f} s  {size / MIB / t_cp_sync:7.0f} MiB/s  (runs {runs(cp_sync_runs)})",
        ),
        ("sha256sum", f"{t_sha:8.2f} s  {size / MIB / t_sha:7.0f} MiB/s  (runs {runs(sha_runs)})"),
        (
            "upload",
            f"{t_up:8.2f} s  {size / MIB / t_up:7.0f} MiB/s  {t_up / t_cp:5.2f} x cp"
            f"  ({t_up / t_cp_sync:.2f} x cp+sync; worker CPU {cpu_up:.2f} s)",
        ),
        (
            "download",
            f"{t_down:8.2f} s  {size / MIB / t_down:7.0f} MiB/s  {t_down / t_cp:5.2f} x cp"
            f"  (worker CPU {cpu_down:.2f} s; client hashes)",
        ),
        (
            "download, no hash",
            f"{t_down_raw:8.2f} s  {size / MIB / t_down_raw:7.0f} MiB/s"
            f"  {t_down_raw / t_cp:5.2f} x cp  (client only counts bytes)",
        ),
        ("cp (again, after)", f"{t_cp_again:8.2f} s"),
        ("worker RSS idle", f"{idle_mb:8.1f} MB"),
        (
            "peak RSS upload",
            f"{rss_up.peak_process_mb:8.1f} MB  (tree {rss_up.peak_total_mb:.1f} MB,"
            f" {rss_up.samples} samples)",
        ),
        (
            "peak RSS download",
            f"{rss_down.peak_process_mb:8.1f} MB  (tree {rss_down.peak_total_mb:.1f} MB,"
            f" {rss_down.samples} samples)",
        ),
        ("worker VmHWM setup", f"{setup_hwm:8.1f} MB  (start-up + sign-in)"),
        (
            "worker VmHWM up/down",
            f"{hwm_up:8.1f} MB / {hwm_down:.1f} MB  ({hwm_note}); master {master_mb:.1f} MB",
        ),
    ]
    targets = [
        (f"upload <= {RATIO_TARGET} x cp", t_up / t_cp <= RATIO_TARGET, f"{t_up / t_cp:.2f}"),
        (
            f"download <= {RATIO_TARGET} x cp",
            t_down / t_cp <= RATIO_TARGET,
            f"{t_down / t_cp:.2f}",
        ),
        (f"peak RSS < {RSS_TARGET_MB} MB", rss_peak < RSS_TARGET_MB, f"{rss_peak:.1f} MB"),
    ]
    print()
    print(f"Evidence upload/download benchmark ({os.cpu_count()} CPUs, gunicorn -w 1)")
    for name, value in rows:
        print(f"  {name:<20} {value}")
    print("targets:")
    for name, ok, value in targets:
        print(f"  {name:<20} {value:>10}  {'PASS' if ok else 'FAIL'}")
    print("(MB = 10^6 bytes; RSS sampled every 50 ms over the gunicorn process tree)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.size_mib < 1:
        parser.error("--size-mib must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="auditapp-bench-", dir="/tmp"))
    try:
        bench(args.size_mib, work)
    except (BenchError, subprocess.CalledProcessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
