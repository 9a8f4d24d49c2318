"""Load test: gunicorn over PostgreSQL, many simulated people browsing and attesting.

A fresh PostgreSQL database (CREATE DATABASE auditapp_load_<pid> on the server of
--database-url, dropped at the end unless --keep) and a temporary instance folder are
set up with `auditapp init` and `auditapp demo --people N --years 1 --controls M` (timed),
then ANALYZEd (the demo bulk-loads the tables; where the server runs without autovacuum
nothing else would give the planner statistics). gunicorn serves the app with --workers
sync workers on 127.0.0.1, and --users simulated people, one thread and one http.client
connection each, sign in (before the clock starts; reported apart) and loop until the
deadline (--seconds):

- managers: home page, their open checks (/checks/?mine=1&status=open), one check's page,
  half the time a small PDF uploaded to it (link=check:<id>) and then attest "effective",
  otherwise attest "not applicable"; the redirect after attesting is followed. A 409 (two
  people attesting the same check at once) is expected: counted, not an error.
- admins: home page, the attested checks (/checks/?status=attested), one check's page, its
  review (decision=accepted; a 409 is expected as above), then the dashboard, catalog,
  organization training and evidence library.
- auditors: dashboard, catalog, organization training and evidence library. The first
  auditor starts one export first: GET /exports/ (a 404 is reported as "export page not
  present"), POST a workbook of the newest fiscal year, poll its status once a second and
  download it.

Managers, admins and auditors are 60/10/30 % of --users, spread round robin over the demo's
accounts of each role (the demo has 6 managers, 1 admin besides the first one, 2 auditors).
With --think S each person pauses 0.5 to 1.5 x S between requests and starts at a random
moment of the first S seconds; without it (the default) the test is a closed loop.

Afterwards the script prints throughput, where the CPU went (gunicorn, PostgreSQL, this
client, other processes), p50/p95/p99 per page, errors (status >= 500, connection errors,
unexpected statuses), the results of `auditapp audit verify` and `auditapp evidence verify`
(run after gunicorn stopped), and the targets with PASS/FAIL. Targets (issue text): 0 errors,
p95 < 300 ms, both verifications clean. The script only measures: it exits 0 whether or not
the targets are met, and non-zero only when the run itself cannot be done (set-up fails,
nobody can sign in).

    .venv/bin/python bench/load.py                 # 10,000 people, 2,000 controls, 50 x 60 s
    .venv/bin/python bench/load.py --people 500 --controls 100 --users 10 --seconds 15
    .venv/bin/python bench/load.py --people 7500 --keep    # keep the set-up for --reuse
    .venv/bin/python bench/load.py --reuse /tmp/auditapp-load-XXXX --think 5
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
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
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
# The project's venv; else the running interpreter's (e.g. for a copy of the tree elsewhere).
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
P95_TARGET_MS = 300.0
REQUEST_TIMEOUT_S = 120.0
MANAGER_SHARE = 0.6  # of the simulated people; then admins (10 %, at least one), auditors
ADMIN_SHARE = 0.1
UPLOAD_SHARE = 0.5  # of the attestations: upload a PDF first, then attest "effective"
SETUP_FILE = "load-setup.json"  # what --keep leaves for --reuse
MAX_EXAMPLES = 8  # unexpected answers kept for the report

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CHECK_LINK_RE = re.compile(r'href="/checks/(\d+)"')
FY_OPTION_RE = re.compile(r'<option value="(FY\d{4})"')
STATEMENTS = {
    "effective": "手順どおり点検し、記録に不備はありませんでした。Checked (load test).",
    "not_applicable": "当期は該当する取扱いがありませんでした。No such processing (load test).",
}


class BenchError(RuntimeError):
    """The load test could not run (as opposed to a target being missed)."""


def log(message: str) -> None:
    print(message, flush=True)


# --- the database of the run ---------------------------------------------------------------


def server_conninfo(url) -> dict:
    """psycopg connection parameters for the server's `postgres` database."""
    params = {"dbname": "postgres", "host": url.host or "127.0.0.1", "port": url.port or 5432}
    if url.username:
        params["user"] = url.username
    if url.password:
        params["password"] = url.password
    return params


def create_database(base_url: str) -> tuple[str, str, dict]:
    """CREATE DATABASE auditapp_load_<pid>; returns its name, its SQLAlchemy URL and the
    server's connection parameters."""
    url = make_url(base_url)
    if not url.drivername.startswith("postgresql"):
        raise BenchError(f"--database-url must be a PostgreSQL URL, got {url.drivername}")
    name = f"auditapp_load_{os.getpid()}"
    params = server_conninfo(url)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    run_url = url.set(drivername="postgresql+psycopg", database=name)
    return name, run_url.render_as_string(hide_password=False), params


def drop_database(name: str, params: dict) -> None:
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def analyze(params: dict, dbname: str) -> str:
    """ANALYZE the run's database (the demo bulk-loads it); returns the server's autovacuum
    setting. With autovacuum off nothing else ever gathers the planner's statistics, and
    plans made for empty tables are kept: nested loops over thousands of rows."""
    with psycopg.connect(**(params | {"dbname": dbname}), autocommit=True) as conn:
        setting = conn.execute("SHOW autovacuum").fetchone()[0]
        conn.execute("ANALYZE")
    return setting


def table_counts(params: dict, dbname: str) -> dict[str, int]:
    """Row counts of the tables the run writes to (for the report)."""
    tables = (
        "user_account",
        "control",
        "check_item",
        "attestation",
        "review",
        "evidence",
        "completion",
        "audit_event",
    )
    counts = {}
    with psycopg.connect(**(params | {"dbname": dbname}), autocommit=True) as conn:
        existing = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        for table in tables:
            if table in existing:
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                counts[table] = conn.execute(query).fetchone()[0]
    return counts


# --- set-up ----------------------------------------------------------------------------------


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)


def run_ok(cmd: list[str], env: dict[str, str]) -> str:
    result = run(cmd, env)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


@dataclass
class Accounts:
    password: str
    managers: list[str]
    admins: list[str]
    auditors: list[str]


def set_up(args, env: dict[str, str]) -> Accounts:
    auditapp = str(BIN / "auditapp")
    start = time.perf_counter()
    run_ok([auditapp, "init"], env)
    log(f"init: {time.perf_counter() - start:.1f} s")
    cmd = [auditapp, "demo", "--people", str(args.people), "--years", "1"]
    cmd += ["--controls", str(args.controls)]
    log(f"$ auditapp {' '.join(cmd[1:])}")
    start = time.perf_counter()
    done = run(cmd, env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(
            f"`auditapp {' '.join(cmd[1:])}` failed after {elapsed:.1f} s (exit "
            f"{done.returncode}): {last}\n{done.stdout}{done.stderr[-3000:]}"
        )
    out = done.stdout
    for line in out.splitlines():
        if "password" not in line:
            log(f"  {line}")
    log(f"demo: {elapsed:.1f} s ({elapsed / 60:.1f} min)")
    match = re.search(r"demo people sign in with their email and the password: (\S+)", out)
    if not match:
        raise BenchError(f"no demo password in the output of `auditapp demo`:\n{out}")
    listing = run_ok([auditapp, "users", "list", "--format", "csv"], env)
    managers, admins, auditors = [], [], []
    for row in csv.DictReader(io.StringIO(listing)):
        if row["employee_id"] == "ADMIN-1":
            continue  # the first admin has a one-time password; demo people share theirs
        roles = set(row["roles"].split(";"))
        if "manager" in roles:
            managers.append(row["email"])
        if "admin" in roles:
            admins.append(row["email"])
        if "auditor" in roles:
            auditors.append(row["email"])
    if not managers or not admins or not auditors:
        raise BenchError(f"the demo lacks managers, admins or auditors:\n{listing[:2000]}")
    log(f"accounts: {len(managers)} managers, {len(admins)} admins, {len(auditors)} auditors")
    return Accounts(match.group(1), managers, admins, auditors)


def code_version() -> str:
    """The commit measured, and whether the app's files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "auditapp", "migrations"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split("\n")
    except OSError:
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head or 'unknown'}" + (f" + uncommitted: {', '.join(changed)}" if changed else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(workers: int, port: int, env: dict[str, str], log_path: Path):
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "--timeout",
                "120",
                "--no-control-socket",  # else one is made under ~/.gunicorn
                "auditapp:create_app()",
            ],
            env=env,
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(port: int, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"gunicorn exited ({server.returncode}):\n{log_path.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"gunicorn did not become healthy in 60 s:\n{log_path.read_text()}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- where the CPU time goes ---------------------------------------------------------------


def _proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
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


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"{entry.path}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def cpu_snapshot(server_pid: int) -> dict:
    """CPU seconds so far: the machine (busy, idle), gunicorn's processes, postgres'."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = (values[3] + values[4]) / tick
    gunicorn = {pid: _proc_cpu(pid) for pid in [server_pid, *_children(server_pid)]}
    postgres = {pid: _proc_cpu(pid) for pid in _postgres_pids()}
    return {"busy": sum(values) / tick - idle, "idle": idle, "gunicorn": gunicorn, "pg": postgres}


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds used between two snapshots (processes alive at both)."""

    def used(key: str) -> float:
        return sum(
            (after[key][pid] or 0) - (t or 0)
            for pid, t in before[key].items()
            if after[key].get(pid) is not None
        )

    return {
        "machine busy": after["busy"] - before["busy"],
        "machine idle": after["idle"] - before["idle"],
        "gunicorn": used("gunicorn"),
        "postgres": used("pg"),
    }


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies per page, statuses, errors and expected conflicts, shared by the threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter = field(default_factory=Counter)  # kind -> count
    errors_by_page: Counter = field(default_factory=Counter)
    conflicts: Counter = field(default_factory=Counter)  # page -> 409s
    examples: list[str] = field(default_factory=list)
    events: Counter = field(default_factory=Counter)  # attested, uploaded, reviewed, ...
    first: float | None = None
    last: float | None = None
    timeline: list[tuple[float, float, str, int]] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # e.g. when the export ran

    def add(self, page: str, ms: float, status: int, end: float) -> None:
        with self.lock:
            self.latency[page].append(ms)
            self.timeline.append((end, ms, page, status))
            self.statuses[page][status] += 1
            self.first = end if self.first is None else min(self.first, end)
            self.last = end if self.last is None else max(self.last, end)

    def error(self, page: str, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.errors_by_page[page] += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(f"{page}: {kind}: {detail}")

    def conflict(self, page: str) -> None:
        with self.lock:
            self.conflicts[page] += 1

    def count(self, event: str) -> None:
        with self.lock:
            self.events[event] += 1

    def mark(self, name: str) -> None:
        with self.lock:
            self.marks[name] = time.perf_counter()

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latency.values())


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (linear interpolation between closest ranks)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- a simulated person ----------------------------------------------------------------------


class Unexpected(Exception):
    """An answer the scenario did not expect (already recorded as an error)."""


class Person:
    """One simulated person: one http.client connection (re-opened when the server closes
    it, as gunicorn's sync workers do after each response), a cookie jar, a CSRF token."""

    def __init__(self, port: int, email: str, recorder: Recorder, rng: random.Random):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        self.email = email
        self.cookies: dict[str, str] = {}
        self.token = ""
        self.last_size = 0
        self.rec = recorder
        self.rng = rng

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept-Language": "en", "Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers | (extra or {})

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for raw in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)

    def request(
        self,
        page: str,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
        conflict_ok: bool = False,
    ) -> tuple[int, http.client.HTTPResponse, str]:
        """Send one request and time it to the last byte of the answer; record it.

        An answer outside `expect` is an error (a 409 is a counted conflict when
        conflict_ok); raises Unexpected then."""
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=self._headers(headers))
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.rec.error(page, "connection", f"{type(exc).__name__}: {exc}")
            raise Unexpected from exc
        end = time.perf_counter()
        if response.will_close:
            self.conn.close()
        self._keep_cookies(response)
        status = response.status
        self.rec.add(page, (end - start) * 1000, status, end)
        self.last_size = len(data)
        text = data.decode("utf-8", "replace")
        if status in expect:
            match = CSRF_RE.search(text)
            if match:
                self.token = match.group(1)
            return status, response, text
        if status == 409 and conflict_ok:
            self.rec.conflict(page)
            raise Unexpected
        kind = "5xx" if status >= 500 else "4xx" if status >= 400 else f"{status}"
        where = response.headers.get("Location", "")
        snippet = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))[-200:]
        self.rec.error(page, kind, f"{method} {path} -> {status} {where} {snippet}".strip())
        raise Unexpected

    def get(self, page: str, path: str) -> str:
        return self.request(page, "GET", path)[2]

    def post_form(self, page: str, path: str, form: dict[str, str], **kw):
        body = urlencode(form | {"csrf_token": self.token}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request(page, "POST", path, body=body, headers=headers, **kw)

    def sign_in(self, password: str) -> None:
        self.get("GET /login", "/login")
        _status, response, _ = self.post_form(
            "POST /login",
            "/login",
            {"email": self.email, "password": password},
            expect=(302,),
        )
        location = response.headers.get("Location", "")
        if location.rstrip("/").endswith("/password"):
            self.rec.error("POST /login", "must change password", self.email)
            raise Unexpected
        self.get("GET /", "/")  # the token for the forms comes from here

    def upload_pdf(self, check_id: int) -> None:
        boundary = "----auditapp-load-" + secrets.token_hex(12)
        name = f"load_{check_id}_{uuid.uuid4().hex[:8]}.pdf"
        pdf = (
            f"%PDF-1.4\n% auditapp load test evidence for check {check_id}\n"
            f"% {uuid.uuid4().hex}\n%%EOF\n"
        ).encode()
        fields = {"csrf_token": self.token, "link": f"check:{check_id}", "description": "load"}
        parts = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        parts += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: application/pdf\r\n\r\n'
        ).encode()
        body = parts + pdf + f"\r\n--{boundary}--\r\n".encode()
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json",
        }
        self.request(
            "POST /evidence/upload",
            "POST",
            "/evidence/upload",
            body=body,
            headers=headers,
            expect=(201,),
        )
        self.rec.count("uploaded")


class Scenario:
    """What a role does in one round; subclasses implement round()."""

    def __init__(self, person: Person, deadline: float, think: float):
        self.p = person
        self.deadline = deadline
        self.think = think

    def pause(self) -> bool:
        """Think time between requests; False when the deadline has passed."""
        if self.think:
            left = self.deadline - time.perf_counter()
            time.sleep(max(0.0, min(left, self.p.rng.uniform(0.5, 1.5) * self.think)))
        return time.perf_counter() < self.deadline

    def run(self) -> None:
        # With think time, people start at random moments of the first pause (a ramp-up),
        # not all at once; without it the test is a closed loop from the first instant.
        if self.think:
            time.sleep(self.p.rng.uniform(0, self.think))
        while time.perf_counter() < self.deadline:
            try:
                self.round()
            except Unexpected:
                self.pause()  # go on with the next round, as a person would

    def round(self) -> None:
        raise NotImplementedError


class ManagerScenario(Scenario):
    def round(self) -> None:
        p = self.p
        p.get("GET /", "/")
        if not self.pause():
            return
        html = p.get("GET /checks/ (mine, open)", "/checks/?mine=1&status=open")
        ids = [int(i) for i in CHECK_LINK_RE.findall(html)]
        if not ids or not self.pause():
            p.rec.count("no open checks" if not ids else "round cut short by the deadline")
            return
        check_id = p.rng.choice(ids)
        html = p.get("GET /checks/<id>", f"/checks/{check_id}")
        if f'action="/checks/{check_id}/attest"' not in html:
            p.rec.count("check not attestable (already attested or not started)")
            self.pause()
            return
        if not self.pause():
            return
        result = "not_applicable"
        if p.rng.random() < UPLOAD_SHARE:
            p.upload_pdf(check_id)
            result = "effective"
            if not self.pause():
                return
        _status, response, _ = p.post_form(
            "POST /checks/<id>/attest",
            f"/checks/{check_id}/attest",
            {"result": result, "statement": STATEMENTS[result]},
            expect=(302,),
            conflict_ok=True,
        )
        p.rec.count(f"attested {result}")
        if self.pause():
            p.get("GET /checks/<id>", response.headers.get("Location") or f"/checks/{check_id}")
        self.pause()


BROWSE = ["/dashboard", "/catalog/", "/training/organization", "/evidence/"]


class AuditorScenario(Scenario):
    def __init__(self, person: Person, deadline: float, think: float, export: bool):
        super().__init__(person, deadline, think)
        self.export = export

    def try_export(self) -> None:
        """One export, as an auditor does it: the export page (a 404 means the feature is
        not there: reported, not an error), start a workbook of the current fiscal year,
        follow its progress (status polled once a second) and download it."""
        self.export = False
        p = self.p
        try:
            status, _response, html = p.request(
                "GET /exports/", "GET", "/exports/", expect=(200, 404)
            )
        except Unexpected:
            return
        if status == 404:
            p.rec.count("export page not present")
            return
        years = FY_OPTION_RE.findall(html)
        form = {"scope_kind": "fy", "fy": years[0] if years else "", "lang": "en"}
        started = time.perf_counter()
        try:
            _status, response, _ = p.post_form(
                "POST /exports/", "/exports/", form, expect=(302,), conflict_ok=True
            )
        except Unexpected:
            p.rec.count("export not started")
            return
        p.rec.mark("export started")
        job = response.headers.get("Location", "")
        p.get("GET /exports/<id>", job)
        state, info = "queued", {}
        while time.perf_counter() < self.deadline:
            time.sleep(1.0)
            info = json.loads(p.get("GET /exports/<id>/status", job.rstrip("/") + "/status"))
            state = info.get("state", "?")
            if state in ("done", "failed"):
                break
        took = time.perf_counter() - started
        p.rec.mark("export ended")
        if state != "done" or not info.get("download_url"):
            p.rec.count(f"export {state} after {took:.0f} s (not downloaded)")
            if state == "failed":
                p.rec.error("export", "failed", f"{job}: {info}")
            return
        p.request("GET /exports/<id>/download", "GET", info["download_url"], expect=(200,))
        p.rec.count(f"export done in {took:.0f} s and downloaded ({p.last_size / 1e6:.2f} MB)")

    def round(self) -> None:
        if self.export:
            self.try_export()
            if not self.pause():
                return
        for path in BROWSE:
            self.p.get(f"GET {path}", path)
            if not self.pause():
                return


class AdminScenario(Scenario):
    def round(self) -> None:
        p = self.p
        p.get("GET /", "/")
        if not self.pause():
            return
        html = p.get("GET /checks/ (attested)", "/checks/?status=attested")
        ids = [int(i) for i in CHECK_LINK_RE.findall(html)]
        if ids and self.pause():
            check_id = p.rng.choice(ids)
            html = p.get("GET /checks/<id>", f"/checks/{check_id}")
            if f'action="/checks/{check_id}/review"' in html and self.pause():
                try:
                    p.post_form(
                        "POST /checks/<id>/review",
                        f"/checks/{check_id}/review",
                        {"decision": "accepted"},
                        expect=(302,),
                        conflict_ok=True,
                    )
                    p.rec.count("reviewed (accepted)")
                except Unexpected:
                    pass
            elif f'action="/checks/{check_id}/review"' not in html:
                p.rec.count("check not reviewable (already reviewed)")
        for path in BROWSE:
            if not self.pause():
                return
            p.get(f"GET {path}", path)
        self.pause()


# --- the run ------------------------------------------------------------------------------------


def cast_people(accounts: Accounts, users: int) -> list[tuple[str, str]]:
    """(role, email) for each simulated person: managers, admins and auditors round robin."""
    n_managers = max(1, round(users * MANAGER_SHARE)) if users > 2 else 1
    n_admins = max(1, round(users * ADMIN_SHARE)) if users > 1 else 0
    n_auditors = max(0, users - n_managers - n_admins)
    cast = [("manager", accounts.managers[i % len(accounts.managers)]) for i in range(n_managers)]
    cast += [("admin", accounts.admins[i % len(accounts.admins)]) for i in range(n_admins)]
    cast += [("auditor", accounts.auditors[i % len(accounts.auditors)]) for i in range(n_auditors)]
    return cast


def load(args, server_pid: int, port: int, accounts: Accounts):
    """Sign everyone in (timed apart), then let them loop until the deadline."""
    cast = cast_people(accounts, args.users)
    login_rec, rec = Recorder(), Recorder()
    people: list[Person] = []
    for i, (_role, email) in enumerate(cast):
        people.append(Person(port, email, login_rec, random.Random(args.seed * 1000 + i)))

    signed_in: list[bool] = [False] * len(people)

    def sign_in(i: int) -> None:
        try:
            people[i].sign_in(accounts.password)
            signed_in[i] = True
        except Unexpected:
            pass

    log(f"signing in {len(people)} people ...")
    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(len(people))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not any(signed_in):
        raise BenchError(f"nobody could sign in: {login_rec.examples}")

    start = time.perf_counter()
    deadline = start + args.seconds
    exported = False
    scenarios: list[Scenario] = []
    for (role, _email), person, ok in zip(cast, people, signed_in, strict=True):
        if not ok:
            continue
        person.rec = rec
        if role == "manager":
            scenarios.append(ManagerScenario(person, deadline, args.think))
        elif role == "admin":
            scenarios.append(AdminScenario(person, deadline, args.think))
        else:
            scenarios.append(AuditorScenario(person, deadline, args.think, export=not exported))
            exported = True
    counts = Counter(role for role, _ in cast)
    log(
        f"running {len(scenarios)} people for {args.seconds} s "
        f"({counts['manager']} managers, {counts['admin']} admins, {counts['auditor']} auditors; "
        f"think time {args.think} s) ..."
    )
    cpu0, snap0 = time.process_time(), cpu_snapshot(server_pid)
    threads = [threading.Thread(target=s.run, daemon=True) for s in scenarios]
    for t in threads:
        t.start()
    # Bounded in time: a request started before the deadline may take REQUEST_TIMEOUT_S.
    join_until = deadline + REQUEST_TIMEOUT_S + 5
    for t in threads:
        t.join(max(0.0, join_until - time.perf_counter()))
    elapsed = time.perf_counter() - start
    cpu = cpu_delta(snap0, cpu_snapshot(server_pid)) | {"client": time.process_time() - cpu0}
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        rec.error("(run)", "stuck", f"{stuck} people still waiting at the end")
    return login_rec, rec, elapsed, cpu


# --- report --------------------------------------------------------------------------------------


def page_table(rec: Recorder) -> list[tuple[str, int, float, float, float, float, str]]:
    rows = []
    for page in sorted(rec.latency):
        values = rec.latency[page]
        statuses = " ".join(f"{s}:{n}" for s, n in sorted(rec.statuses[page].items()))
        rows.append(
            (
                page,
                len(values),
                percentile(values, 50),
                percentile(values, 95),
                percentile(values, 99),
                max(values),
                statuses,
            )
        )
    return rows


def print_pages(rec: Recorder) -> None:
    log(f"{'page':<34} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for page, n, p50, p95, p99, top, statuses in page_table(rec):
        log(f"{page:<34} {n:>6} {p50:>8.0f} {p95:>8.0f} {p99:>8.0f} {top:>8.0f}  {statuses}")
    everything = [v for values in rec.latency.values() for v in values]
    log(
        f"{'(all)':<34} {len(everything):>6} {percentile(everything, 50):>8.0f} "
        f"{percentile(everything, 95):>8.0f} {percentile(everything, 99):>8.0f} "
        f"{max(everything, default=0):>8.0f}"
    )


def verify(env: dict[str, str]) -> dict[str, tuple[int, str]]:
    results = {}
    for what in ("audit", "evidence"):
        start = time.perf_counter()
        done = run([str(BIN / "auditapp"), what, "verify"], env)
        text = (done.stdout + done.stderr).strip()
        results[what] = (done.returncode, text, time.perf_counter() - start)
    return results


def server_errors(log_path: Path, limit: int = 30) -> list[str]:
    """Lines of the gunicorn log that tell of errors (tracebacks, worker timeouts)."""
    lines = log_path.read_text(errors="replace").splitlines()
    marks = ("Traceback", "ERROR", "CRITICAL", "WORKER TIMEOUT", "Error:", "Exception")
    hits = [i for i, line in enumerate(lines) if any(m in line for m in marks)]
    out: list[str] = []
    for i in hits:
        out.extend(lines[i : i + 1])
        if len(out) >= limit:
            break
    return out


def report(args, login_rec, rec, elapsed, cpu, results, log_path, demo_info) -> None:
    log("")
    log("== sign-in (before the clock started) ==")
    print_pages(login_rec)
    log("")
    log(f"== load: {args.users} people, {elapsed:.1f} s (deadline {args.seconds} s) ==")
    requests = rec.requests
    throughput = requests / elapsed if elapsed else 0.0
    log(f"throughput: {requests} requests in {elapsed:.1f} s = {throughput:.1f} requests/s")
    cores = os.cpu_count() or 1
    log(
        f"CPU during the run: machine {cpu['machine busy']:.1f} s busy of "
        f"{cpu['machine busy'] + cpu['machine idle']:.1f} s ({cores} cores, "
        f"{100 * cpu['machine busy'] / max(1e-9, cpu['machine busy'] + cpu['machine idle']):.0f} %"
        f" busy); gunicorn {cpu['gunicorn']:.1f} s, postgres {cpu['postgres']:.1f} s, "
        f"this client {cpu['client']:.1f} s; gunicorn CPU per request "
        f"{1000 * cpu['gunicorn'] / max(1, requests):.0f} ms"
    )
    others = cpu["machine busy"] - cpu["gunicorn"] - cpu["postgres"] - cpu["client"]
    if others > 0.1 * (cpu["machine busy"] + cpu["machine idle"]):
        log(
            f"WARNING: other processes used {others:.1f} s of CPU during the run; the figures "
            "are not those of a quiet machine"
        )
    print_pages(rec)
    log("")
    if "export started" in rec.marks and "export ended" in rec.marks:
        lo, hi = rec.marks["export started"], rec.marks["export ended"]
        during = [ms for end, ms, _p, _s in rec.timeline if lo <= end <= hi]
        outside = [ms for end, ms, _p, _s in rec.timeline if not lo <= end <= hi]
        log(
            f"while the export ran ({hi - lo:.0f} s): {len(during)} requests, p50 "
            f"{percentile(during, 50):.0f} ms, p95 {percentile(during, 95):.0f} ms; the rest of "
            f"the run: {len(outside)} requests, p50 {percentile(outside, 50):.0f} ms, p95 "
            f"{percentile(outside, 95):.0f} ms"
        )
    events = ", ".join(f"{k}: {v}" for k, v in sorted(rec.events.items())) or "none"
    log(f"actions: {events}")
    conflicts = ", ".join(f"{k}: {v}" for k, v in sorted(rec.conflicts.items())) or "none"
    log(f"409 conflicts (expected, not errors): {conflicts}")
    total_errors = sum(rec.errors.values())
    by_kind = ", ".join(f"{k}: {v}" for k, v in sorted(rec.errors.items())) or "none"
    log(f"errors: {total_errors} ({by_kind})")
    for page, n in sorted(rec.errors_by_page.items()):
        log(f"  {page}: {n}")
    for example in rec.examples:
        log(f"  e.g. {example}")
    if login_rec.errors:
        log(f"sign-in errors: {dict(login_rec.errors)}; {login_rec.examples}")
    hits = server_errors(log_path)
    if hits:
        log(f"gunicorn log ({log_path}) error lines:")
        for line in hits:
            log(f"  {line}")
    log("")
    log("== verification after the run ==")
    for what, (code, text, seconds) in results.items():
        log(f"$ auditapp {what} verify  -> exit {code} ({seconds:.1f} s)")
        for line in text.splitlines()[:20]:
            log(f"  {line}")
    log("")
    log("== targets ==")
    everything = [v for values in rec.latency.values() for v in values]
    all_errors = total_errors + sum(login_rec.errors.values())
    rows = [
        ("errors (sign-in and run)", "0", str(all_errors), all_errors == 0),
        (
            "p95, all requests",
            f"< {P95_TARGET_MS:.0f} ms",
            f"{percentile(everything, 95):.0f} ms",
            percentile(everything, 95) < P95_TARGET_MS,
        ),
    ]
    for page, _n, _p50, p95, _p99, _top, _s in page_table(rec):
        rows.append((f"p95 {page}", f"< {P95_TARGET_MS:.0f} ms", f"{p95:.0f} ms", p95 < 300))
    for what, (code, _text, _s) in results.items():
        rows.append((f"auditapp {what} verify", "exit 0", f"exit {code}", code == 0))
    for name, target, got, ok in rows:
        log(f"{name:<44} {target:>10} {got:>10}  {'PASS' if ok else 'FAIL'}")
    log("")
    log(f"data set: {demo_info}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--controls", type=int, default=2_000)
    parser.add_argument("--users", type=int, default=50, help="simulated people (threads)")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean pause between a person's requests (s)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--samples", type=Path, help="write every timed request to this CSV (end s, ms, page)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the instance folder"
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not ANALYZE the database after the set-up (plans as autovacuum left them)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="FOLDER",
        help="run again on the set-up a --keep run left in FOLDER (its data as that run left "
        "it; --people/--controls/--database-url are then ignored; nothing is dropped)",
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.seconds <= 0 or args.workers < 1:
        parser.error("--users, --seconds and --workers must be positive")

    if args.reuse:
        work = args.reuse.resolve()
        saved = json.loads((work / SETUP_FILE).read_text())
        args.people, args.controls = saved["people"], saved["controls"]
    log(
        f"load test: {args.people} people, {args.controls} synthetic controls, "
        f"{args.users} simulated people for {args.seconds:g} s, gunicorn -w {args.workers}, "
        f"{os.cpu_count()} CPUs"
    )
    if args.reuse:
        dbname, url = saved["database"], saved["url"]
        params = server_conninfo(make_url(url))
        log(f"reusing database {dbname} and folder {work} (set up {saved['created']})")
    else:
        work = Path(tempfile.mkdtemp(prefix="auditapp-load-"))
        dbname, url, params = create_database(args.database_url)
        log(f"database {dbname} on {params['host']}:{params['port']}; folder {work}")
    server = None
    try:
        instance = work / "instance"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAPP_")}
        env |= {
            "AUDITAPP_INSTANCE_PATH": str(instance),
            "AUDITAPP_DATABASE_URL": url,
            # Measure the code of this tree, not whatever the venv's editable install points to.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        if args.reuse:
            accounts = Accounts(**saved["accounts"])
        else:
            instance.mkdir()
            (instance / "config.py").write_text(f"SECRET_KEY = {secrets.token_hex(32)!r}\n")
            accounts = set_up(args, env)
            if args.keep:
                saved = {
                    "database": dbname,
                    "url": url,
                    "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "people": args.people,
                    "controls": args.controls,
                    "accounts": accounts.__dict__,
                }
                (work / SETUP_FILE).write_text(json.dumps(saved, indent=1))
        counts = table_counts(params, dbname)
        demo_info = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        log(f"data set: {demo_info}")

        if args.no_analyze:
            log("planner statistics: left as the set-up left them (--no-analyze)")
        else:
            start = time.perf_counter()
            setting = analyze(params, dbname)
            log(
                f"planner statistics: ANALYZE in {time.perf_counter() - start:.1f} s "
                f"(the server's autovacuum is {setting})"
            )

        port = free_port()
        log_path = work / "gunicorn.log"
        server = start_server(args.workers, port, env, log_path)
        wait_healthy(port, server, log_path)
        log(f"gunicorn -w {args.workers} on 127.0.0.1:{port} (pid {server.pid})")
        log(f"code served: {code_version()} (as gunicorn started)")
        login_rec, rec, elapsed, cpu = load(args, server.pid, port, accounts)
        stop_server(server)
        server = None
        results = verify(env)
        after = table_counts(params, dbname)
        demo_info += "; after the run: " + ", ".join(f"{k} {v:,}" for k, v in after.items())
        report(args, login_rec, rec, elapsed, cpu, results, log_path, demo_info)
        if args.samples:
            origin = min((t[0] for t in rec.timeline), default=0.0)
            with open(args.samples, "w", newline="") as f:
                out = csv.writer(f)
                out.writerow(["end_s", "ms", "page", "status"])
                for end, ms, page, status in sorted(rec.timeline):
                    out.writerow([f"{end - origin:.3f}", f"{ms:.1f}", page, status])
                for name, at in rec.marks.items():
                    out.writerow([f"{at - origin:.3f}", "", f"# {name}", ""])
            log(f"samples: {args.samples}")
    finally:
        if server is not None:
            stop_server(server)
        if args.keep or args.reuse:
            log(f"kept: database {dbname}, folder {work} (again: --reuse {work})")
        else:
            drop_database(dbname, params)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        sys.exit(2)
