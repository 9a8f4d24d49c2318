"""Benchmark: training status and the completion import at scale.

A fresh app is built on a temporary SQLite file (or on a schema of its own in PostgreSQL
with --database-url) and filled with SQLAlchemy Core bulk inserts: 20 departments,
--people people (hired over the last 8 years, 5 % managers) plus one admin who signs in,
--courses annual courses (a mix of audience_all, department and role audiences, one
acknowledgement) and, per person and course they must take, one completion a year since
they were hired for the last --years years (valid_until = completed_on + 12 months).
About 7 % of the person-course pairs miss their latest completion (overdue), 3 % of the
scored course's results fail the pass mark, and 0.2 % of the pairs are exempt.

Then:

1. pages: a test client signed in as the admin GETs /training/department?department=<the
   department closest to 500 people> and /training/organization (3 warm-ups, then
   --requests timed requests each): p50/p95 and SQL statements per request; and the
   services called directly: status_rows(department), rollup_table() and
   status_rows(status="overdue") (which /training/organization also runs).
2. import: CSV files of new completions (employee_id, course_code, completed_on, score)
   are imported with `auditapp training import FILE --today <today>` in a subprocess whose
   instance folder (AUDITAPP_INSTANCE_PATH) has a config.py pointing at the same
   database: a 1-row file (start-up floor), a 10,000-row file, the --rows file (50,000),
   and the --rows file again (must add 0). Wall time and the child's peak RSS
   (VmHWM from /proc/<pid>/status, polled) of each.

Targets (issue text): both pages p95 < 200 ms; the 50,000-row import < 10 s with memory
bounded (streamed). "Bounded" is judged here as: the peak RSS of the --rows import is at
most 10 % above the peak RSS of the 10,000-row import (5 x the rows, about the same
memory). The script only measures: it exits 0 whether or not the targets are met, and
non-zero only when something fails (set-up, HTTP status, import exit status).

    .venv/bin/python bench/training.py                          # 10,000 people, SQLite
    .venv/bin/python bench/training.py --people 1000 --rows 5000   # quick smoke run
    .venv/bin/python bench/training.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/training.py --profile   # cProfile of pages and of the import
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import os
import pstats
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The project's venv; else the running interpreter's (e.g. for a copy of the tree elsewhere).
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent

from auditapp import create_app, scheduler  # noqa: E402
from auditapp.extensions import db  # noqa: E402
from auditapp.models import (  # noqa: E402
    Completion,
    Course,
    CourseDepartment,
    CourseRole,
    Department,
    Exemption,
    User,
    UserRole,
)
from auditapp.services import auth, training  # noqa: E402

PAGE_P95_TARGET_MS = 200.0
IMPORT_TARGET_S = 10.0
MEMORY_GROWTH_LIMIT = 0.10  # peak RSS of the --rows import vs the 10,000-row one
SMALL_ROWS = 10_000
WARMUPS = 3
REQUESTS = 30
# A series of timed calls stops early once it has used this long and has MIN_SAMPLES (so a
# pathologically slow page still finishes the run); the table says how many were timed.
SERIES_BUDGET_S = 90.0
MIN_SAMPLES = 5
PROFILED = 10  # requests or calls run under cProfile with --profile (after the timed ones)
DEPARTMENTS = 20
HIRE_YEARS = 8
MANAGER_SHARE = 0.05
SKIP_LATEST_SHARE = 0.07
FAIL_SHARE = 0.03
EXEMPT_SHARE = 0.002
PASS_MARK = 70
BATCH = 5000
POLL_SECONDS = 0.01
PASSWORD = "bench-admin-password-1"
ADMIN_EMAIL = "admin@bench.example.jp"
UNUSED_HASH = "scrypt:bench-no-login"
LABEL = "bench"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
IMPORTED_RE = re.compile(r"imported: (\d+) added, (\d+) already recorded")

# Course templates, cycled for --courses: (code, ja, en, kind, audience, score_required).
# audience: "all", "departments" (3 of every 4 departments) or "managers" (role).
COURSES = (
    ("SEC", "情報セキュリティ研修", "Information security training", "training", "all", True),
    ("NDA", "秘密保持誓約", "Confidentiality pledge", "acknowledgement", "all", False),
    ("PRIV", "個人情報保護研修", "Personal data protection training", "training", "all", False),
    ("OPS", "部門別取扱研修", "Departmental handling training", "training", "departments", False),
    ("MGR", "管理者研修", "Training for managers", "training", "managers", False),
)


class BenchError(RuntimeError):
    """The benchmark could not run (as opposed to a target being missed)."""


# --- helpers -------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, flush=True)


@contextmanager
def profiled(enabled: bool, label: str, limit: int = 30):
    """Run the block under cProfile and print the top functions by cumulative time."""
    if not enabled:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(limit)
        log(f"\n--- cProfile: {label} (top {limit} by cumulative time) ---")
        log(out.getvalue().strip())
        log("--- end of profile ---\n")


class QueryCounter:
    """Counts the SQL statements sent through an engine (before_cursor_execute)."""

    def __init__(self, engine):
        self.engine = engine
        self.count = 0
        self.verbs: Counter[str] = Counter()

    def __enter__(self) -> QueryCounter:
        sa.event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._on_execute)

    def reset(self) -> None:
        self.count = 0
        self.verbs = Counter()

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        self.verbs[statement.lstrip().split(None, 1)[0].upper()] += 1


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile (linear interpolation between closest ranks)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def batches(rows: list, size: int = BATCH):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def enough(times: list[float], requests: int) -> bool:
    """Whether a series is done: all requests timed, or over budget with MIN_SAMPLES."""
    return len(times) >= requests or (len(times) >= MIN_SAMPLES and sum(times) > SERIES_BUDGET_S)


# --- the database ----------------------------------------------------------------------


@contextmanager
def database(url: str | None, workdir: Path, keep: bool):
    """(URL, engine options, schema) of a database of this run's own; dropped afterwards."""
    if not url:
        yield f"sqlite:///{workdir / 'bench.db'}", {}, None
        return
    if not url.startswith("postgresql"):
        raise BenchError(f"--database-url: only PostgreSQL URLs are supported, got {url!r}")
    schema = f"bench_training_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}, schema
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def write_instance_config(instance: Path, url: str, engine_options: dict) -> None:
    """The config.py the `auditapp` subprocess reads (AUDITAPP_INSTANCE_PATH=instance)."""
    instance.mkdir(parents=True, exist_ok=True)
    (instance / "config.py").write_text(
        "# Written by bench/training.py\n"
        f"SECRET_KEY = {'bench-secret-' + uuid.uuid4().hex!r}\n"
        f"DATABASE_URL = {url!r}\n"
        f"SQLALCHEMY_ENGINE_OPTIONS = {engine_options!r}\n"
        "SCHEDULER_IN_PROCESS = False\n",
        encoding="utf-8",
    )


def build_app(url: str, engine_options: dict, instance: Path):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-secret",
            "INSTANCE_PATH": str(instance),
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            "SCHEDULER_IN_PROCESS": False,
        }
    )
    with app.app_context():
        db.create_all()
    return app


# --- 1. the data -------------------------------------------------------------------------


class Population:
    """What was generated, kept for the import files: people, courses, completion keys."""

    def __init__(self):
        self.people: list[dict] = []  # id, employee_id, department_id, hired_on, roles
        self.courses: list[dict] = []  # id, code, audience, departments, score_required
        self.pairs: list[tuple[dict, dict]] = []  # (person, course) who must take what
        self.keys: set[tuple[int, int, date]] = set()  # (course_id, user_id, completed_on)
        self.counts: Counter[str] = Counter()


def create_departments(session, count: int) -> list[int]:
    session.execute(
        sa.insert(Department.__table__),
        [
            {
                "code": f"BD{i:02d}",
                "name": f"部署 {i:02d}",
                "name_en": f"Department {i:02d}",
                "active": True,
            }
            for i in range(1, count + 1)
        ],
    )
    return list(session.scalars(sa.select(Department.id).order_by(Department.code)))


def create_people(session, count: int, dept_ids: list[int], today: date, rng) -> list[dict]:
    """`count` people round robin over the departments, plus the admin (no department)."""
    now = datetime.now(UTC)
    rows, roles = [], {}
    for n in range(1, count + 1):
        emp = f"E{n:06d}"
        rows.append(
            {
                "employee_id": emp,
                "name": f"社員 {n:05d}",
                "email": f"user{n:06d}@bench.example.jp",
                "department_id": dept_ids[(n - 1) % len(dept_ids)],
                "active": True,
                "hired_on": today - timedelta(days=rng.randrange(HIRE_YEARS * 365)),
                "password_hash": UNUSED_HASH,
                "must_change_password": False,
                "session_version": 1,
                "created_at": now,
            }
        )
        roles[emp] = ["employee", "manager"] if rng.random() < MANAGER_SHARE else ["employee"]
    rows.append(
        {
            "employee_id": "BA0001",
            "name": "監査 管理者",
            "email": ADMIN_EMAIL,
            "department_id": None,
            "active": True,
            "hired_on": today - timedelta(days=HIRE_YEARS * 365),
            "password_hash": auth.hash_password(PASSWORD),  # hashed once: the admin signs in
            "must_change_password": False,
            "session_version": 1,
            "created_at": now,
        }
    )
    roles["BA0001"] = ["admin"]
    for chunk in batches(rows):
        session.execute(sa.insert(User.__table__), chunk)
    ids = dict(session.execute(sa.select(User.employee_id, User.id)).all())
    session.execute(
        sa.insert(UserRole.__table__),
        [{"user_id": ids[emp], "role": role} for emp, rs in roles.items() for role in rs],
    )
    return [
        {
            "id": ids[r["employee_id"]],
            "employee_id": r["employee_id"],
            "department_id": r["department_id"],
            "hired_on": r["hired_on"],
            "roles": set(roles[r["employee_id"]]),
        }
        for r in rows
    ]


def create_courses(session, count: int, dept_ids: list[int], today: date) -> list[dict]:
    effective = date(today.year - HIRE_YEARS - 1, 4, 1)  # before any hiring day
    some_depts = [d for i, d in enumerate(dept_ids) if i % 4 != 3]
    courses = []
    for n in range(count):
        code, ja, en, kind, audience, scored = COURSES[n % len(COURSES)]
        suffix = f"-{n // len(COURSES) + 1}" if n >= len(COURSES) else ""
        courses.append(
            {
                "code": f"{code}{suffix}",
                "title_ja": f"{ja}{suffix}",
                "title_en": f"{en}{suffix}",
                "kind": kind,
                "ack_text": None
                if kind == "training"
                else "業務上知り得た個人情報を漏らしません。",
                "audience_all": audience == "all",
                "recurrence_months": 12,
                "new_hire_grace_days": 30,
                "due_soon_days": 30,
                "certificate_required": False,
                "score_required": scored,
                "pass_mark": PASS_MARK if scored else None,
                "effective_from": effective,
                "active": True,
                "created_at": datetime.now(UTC),
            }
        )
    session.execute(sa.insert(Course.__table__), courses)
    ids = dict(session.execute(sa.select(Course.code, Course.id)).all())
    out, depts, roles = [], [], []
    for n, row in enumerate(courses):
        audience = COURSES[n % len(COURSES)][4]
        cid = ids[row["code"]]
        chosen = some_depts if audience == "departments" else []
        depts += [{"course_id": cid, "department_id": d} for d in chosen]
        if audience == "managers":
            roles.append({"course_id": cid, "role": "manager"})
        out.append(
            {
                "id": cid,
                "code": row["code"],
                "audience": audience,
                "departments": set(chosen),
                "score_required": row["score_required"],
                "kind": row["kind"],
            }
        )
    if depts:
        session.execute(sa.insert(CourseDepartment.__table__), depts)
    if roles:
        session.execute(sa.insert(CourseRole.__table__), roles)
    return out


def must_take(person: dict, course: dict) -> bool:
    """Mirrors services.training.must_take_condition for the generated audiences."""
    if course["audience"] == "all":
        return True
    if course["audience"] == "departments":
        return person["department_id"] in course["departments"]
    return "manager" in person["roles"]


def create_history(session, pop: Population, today: date, years: int, rng) -> None:
    """One completion a year per pair since hiring (the last `years`), with gaps, failures
    and exemptions; Core inserts in batches."""
    rows: list[dict] = []
    exemptions: list[dict] = []

    def flush(force: bool = False) -> None:
        if rows and (force or len(rows) >= BATCH):
            session.execute(sa.insert(Completion.__table__), rows)
            rows.clear()

    for person in pop.people:
        for course in pop.courses:
            if not must_take(person, course):
                continue
            pop.pairs.append((person, course))
            if rng.random() < EXEMPT_SHARE:
                exemptions.append(
                    {
                        "course_id": course["id"],
                        "user_id": person["id"],
                        "reason": "長期休職中のため / on long-term leave",
                        "granted_by_label": LABEL,
                        "granted_at": datetime.now(UTC),
                    }
                )
                pop.counts["exemptions"] += 1
            first = person["hired_on"] + timedelta(days=rng.randrange(30))
            days = []
            k = 0
            while (day := training.add_months(first, 12 * k)) <= today:
                days.append(day)
                k += 1
            days = days[-years:]
            if days and rng.random() < SKIP_LATEST_SHARE:
                days.pop()  # the latest one is missing: overdue (or not started)
                pop.counts["pairs missing the latest"] += 1
            for day in days:
                score, passed = None, True
                if course["score_required"]:
                    if rng.random() < FAIL_SHARE:
                        score, passed = rng.randrange(40, PASS_MARK), False
                        pop.counts["failed results"] += 1
                    else:
                        score = rng.randrange(PASS_MARK, 101)
                at = datetime.combine(day, dtime(3, 0), tzinfo=UTC)
                rows.append(
                    {
                        "course_id": course["id"],
                        "user_id": person["id"],
                        "completed_on": day,
                        "score": score,
                        "passed": passed,
                        "valid_until": training.add_months(day, 12),
                        "source": "import",
                        "recorded_by_id": None,
                        "recorded_by_label": LABEL,
                        "recorded_at": at,
                        "agreed_at": at if course["kind"] == "acknowledgement" else None,
                    }
                )
                pop.keys.add((course["id"], person["id"], day))
                pop.counts["completions"] += 1
            flush()
    flush(force=True)
    if exemptions:
        session.execute(sa.insert(Exemption.__table__), exemptions)


def build_population(app, args, today: date) -> Population:
    rng = random.Random(20261127)
    pop = Population()
    with app.app_context():
        session = db.session
        dept_ids = create_departments(session, DEPARTMENTS)
        pop.people = create_people(session, args.people, dept_ids, today, rng)
        pop.courses = create_courses(session, args.courses, dept_ids, today)
        create_history(session, pop, today, args.years, rng)
        session.commit()
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does shortly after a bulk load; without it the planner has
            # no statistics for the freshly filled tables.
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        db.session.remove()
    return pop


# --- 2. the pages -----------------------------------------------------------------------


def sign_in(client, email: str, password: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    match = CSRF_RE.search(html)
    if not match:
        raise BenchError("no CSRF token on /login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": match.group(1)}
    )
    if response.status_code != 302:
        raise BenchError(f"sign-in failed: HTTP {response.status_code}")


def time_requests(app, client, path: str, requests: int, profile: bool) -> dict:
    """Wall time and SQL statements of GET path: WARMUPS untimed, then `requests` timed
    (with --profile, PROFILED more requests afterwards under cProfile, not timed)."""
    with app.app_context():
        engine = db.engine
    for _ in range(WARMUPS):
        response = client.get(path)
        if response.status_code != 200:
            raise BenchError(f"GET {path}: HTTP {response.status_code}")
    times, counts, size = [], [], 0
    with QueryCounter(engine) as counter:
        while not enough(times, requests):
            counter.reset()
            started = time.perf_counter()
            response = client.get(path)
            body = response.get_data()
            times.append(time.perf_counter() - started)
            counts.append(counter.count)
            size = len(body)
            if response.status_code != 200:
                raise BenchError(f"GET {path}: HTTP {response.status_code}")
    with profiled(profile, f"GET {path} x {PROFILED}"):
        for _ in range(PROFILED if profile else 0):
            client.get(path).get_data()
    return {
        "n": len(times),
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "max_ms": max(times) * 1000,
        "queries": statistics.median(counts),
        "queries_max": max(counts),
        "bytes": size,
    }


def time_service(app, label: str, call, requests: int, profile: bool) -> dict:
    """Wall time of a service call in an app context (1 warm-up, then `requests`; with
    --profile, PROFILED more calls afterwards under cProfile, not timed)."""
    with app.app_context():
        call(db.session)
        db.session.rollback()
        times, counts = [], []
        with QueryCounter(db.engine) as counter:
            while not enough(times, requests):
                counter.reset()
                started = time.perf_counter()
                result = call(db.session)
                times.append(time.perf_counter() - started)
                counts.append(counter.count)
                db.session.rollback()
        with profiled(profile, f"{label} x {PROFILED}"):
            for _ in range(PROFILED if profile else 0):
                call(db.session)
                db.session.rollback()
        db.session.remove()
    return {
        "n": len(times),
        "p50_ms": statistics.median(times) * 1000,
        "p95_ms": percentile(times, 95) * 1000,
        "queries": statistics.median(counts),
        "size": len(result),
    }


def pick_department(app) -> tuple[int, str, int]:
    """The department whose active membership is closest to 500: (id, code, members)."""
    with app.app_context():
        sizes = db.session.execute(
            sa.select(Department.id, Department.code, sa.func.count(User.id))
            .join(User, User.department_id == Department.id)
            .where(User.active.is_(True))
            .group_by(Department.id, Department.code)
        ).all()
        db.session.remove()
    if not sizes:
        raise BenchError("no department has members")
    return min(sizes, key=lambda r: (abs(r[2] - 500), r[0]))


def status_breakdown(app, today: date) -> Counter:
    with app.app_context():
        cells = training.rollup_table(db.session, today)
        db.session.remove()
    totals: Counter[str] = Counter()
    for cell in cells.values():
        for key in ("complete", "due_soon", "overdue", "not_started", "exempt", "total"):
            totals[key] += cell[key]
    return totals


# --- 3. the import ----------------------------------------------------------------------


def write_import_file(path: Path, pop: Population, rows: int, today: date, rng) -> None:
    """`rows` new completions (keys neither recorded nor in an earlier file), valid."""
    pairs = list(pop.pairs)
    rng.shuffle(pairs)
    written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["employee_id", "course_code", "completed_on", "score"])
        i = 0
        while written < rows:
            person, course = pairs[i % len(pairs)]
            i += 1
            span = (today - person["hired_on"]).days
            for _try in range(20):
                day = person["hired_on"] + timedelta(days=rng.randrange(span + 1))
                key = (course["id"], person["id"], day)
                if key not in pop.keys:
                    break
            else:
                continue
            pop.keys.add(key)
            score = rng.randrange(PASS_MARK, 101) if course["score_required"] else ""
            out.writerow([person["employee_id"], course["code"], day.isoformat(), score])
            written += 1


def run_import(instance: Path, file: Path, today: date) -> dict:
    """`auditapp training import FILE --today D` in a subprocess: wall time, peak RSS.

    The peak RSS is the child's VmHWM (/proc/<pid>/status), polled every POLL_SECONDS
    until it exits. Not ru_maxrss from wait4: Linux carries the high-water mark of the
    memory a process had before exec into ru_maxrss, and a child forked from this
    (large) benchmark process would report at least this process's size.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITAPP_")}
    env["AUDITAPP_INSTANCE_PATH"] = str(instance)
    command = [str(BIN / "auditapp"), "training", "import", str(file), "--today", str(today)]
    status_file = None
    peak_kib = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        status_file = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            peak_kib = max(peak_kib, vm_hwm_kib(status_file))
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise BenchError(
            f"{shlex.join(command)} exited {proc.returncode}:\n{stdout}\n{stderr[-3000:]}"
        )
    match = IMPORTED_RE.search(stdout)
    if not match:
        raise BenchError(f"unexpected output of the import: {stdout!r}")
    return {
        "seconds": seconds,
        "rss_mb": peak_kib / 1024,
        "added": int(match.group(1)),
        "already": int(match.group(2)),
        "output": stdout.strip(),
    }


def vm_hwm_kib(status_file: Path) -> int:
    """The peak resident set size of a running process in KiB (0 once it has exited)."""
    try:
        text = status_file.read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def profile_import(app, file: Path, today: date) -> None:
    """The import in-process under cProfile and tracemalloc, rolled back afterwards."""
    with app.app_context():
        tracemalloc.start(5)
        label = f"import_completions({file.name}) in-process, rolled back"
        with profiled(True, label), file.open("rb") as stream:
            result = training.import_completions(db.session, "cli:bench", stream, today=today)
        snapshot = tracemalloc.take_snapshot()
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        db.session.rollback()
        db.session.remove()
    log(f"in-process import (rolled back): added {result.added}, already {result.already}")
    log(f"tracemalloc: peak {peak / 1e6:.1f} MB of Python allocations during the import")
    log("largest allocations still held at the end of import_completions (by line):")
    for stat in snapshot.statistics("lineno")[:8]:
        log(f"    {stat.size / 1e6:7.1f} MB  {stat.count:>8} blocks  {stat.traceback[0]}")


def count_completions(app) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(Completion))
        db.session.remove()
    return n


# --- the run ------------------------------------------------------------------------------


def run(args) -> list[tuple]:
    workdir = Path(tempfile.mkdtemp(prefix="auditapp-bench-training-"))
    instance = workdir / "instance"
    try:
        with database(args.database_url, workdir, args.keep) as (url, options, schema):
            write_instance_config(instance, url, options)
            app = build_app(url, options, instance)
            try:
                figures = measure(app, args, instance, workdir)
            finally:
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
            if args.keep:
                where = f"schema {schema}" if schema else f"{workdir / 'bench.db'}"
                log(f"kept: {workdir} (database: {where})")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return figures


def measure(app, args, instance: Path, workdir: Path) -> list[tuple]:
    with app.app_context():
        dialect = db.engine.dialect.name
    today = scheduler.today_in(app)  # the web layer's today (TIMEZONE), so they agree
    log(
        f"database: {dialect}; today {today}; {args.people} people, {args.courses} courses, "
        f"{args.years} years of completions"
    )

    started = time.perf_counter()
    pop = build_population(app, args, today)
    setup_s = time.perf_counter() - started
    log(
        f"set-up: {len(pop.people):,} people, {len(pop.pairs):,} person-course pairs, "
        f"{dict(pop.counts)} in {setup_s:.1f} s"
    )
    totals = status_breakdown(app, today)
    log(f"status over the organization: {dict(totals)}")
    if totals["total"] != len(pop.pairs):
        log(
            f"warning: the app computes {totals['total']:,} person-course rows but "
            f"{len(pop.pairs):,} pairs were generated from the audiences (see must_take)"
        )

    dept_id, dept_code, members = pick_department(app)
    client = app.test_client()
    sign_in(client, ADMIN_EMAIL, PASSWORD)
    dept_path = f"/training/department?department={dept_id}"
    dept_page = time_requests(app, client, dept_path, args.requests, args.profile)
    log(f"GET {dept_path} ({dept_code}, {members} people): {dept_page}")
    org_page = time_requests(app, client, "/training/organization", args.requests, args.profile)
    log(f"GET /training/organization: {org_page}")

    flt = training.StatusFilter(department_id=dept_id)
    svc_dept = time_service(
        app,
        "status_rows(department)",
        lambda s: training.status_rows(s, today, flt),
        args.requests,
        args.profile,
    )
    log(f"status_rows(department {dept_code}): {svc_dept}")
    svc_rollup = time_service(
        app,
        "rollup_table()",
        lambda s: training.rollup_table(s, today),
        args.requests,
        args.profile,
    )
    log(f"rollup_table(): {svc_rollup}")
    overdue = training.StatusFilter(status="overdue")
    svc_overdue = time_service(
        app,
        "status_rows(status=overdue)",
        lambda s: training.status_rows(s, today, overdue),
        args.requests,
        args.profile,
    )
    log(f"status_rows(status=overdue): {svc_overdue}")

    rng = random.Random(1127)
    files = {}
    for name, rows in (("one", 1), ("small", SMALL_ROWS), ("large", args.rows)):
        files[name] = workdir / f"completions-{rows}.csv"
        write_import_file(files[name], pop, rows, today, rng)
    size_mb = files["large"].stat().st_size / 1e6
    log(f"import files written: 1, {SMALL_ROWS:,} and {args.rows:,} rows ({size_mb:.1f} MB)")
    if args.profile:
        profile_import(app, files["large"], today)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # no connection of ours open while the subprocess writes

    before = count_completions(app)
    imports = {}
    for name in ("one", "small", "large", "again"):
        file = files["large" if name == "again" else name]
        imports[name] = run_import(instance, file, today)
        log(f"import {file.name} ({name}): {imports[name]}")
    after = count_completions(app)
    expected = 1 + SMALL_ROWS + args.rows
    if after - before != expected or imports["large"]["added"] != args.rows:
        raise BenchError(
            f"imports added {after - before} completions (expected {expected}); "
            f"large file reported {imports['large']['added']} added"
        )

    large, small, again = imports["large"], imports["small"], imports["again"]
    growth = large["rss_mb"] / small["rss_mb"] - 1
    dept_target = f"p95 < {PAGE_P95_TARGET_MS:.0f} ms"
    return [
        ("database", dialect, "", ""),
        (
            "people / departments / courses",
            f"{args.people:,} + admin / 20 / {args.courses}",
            "",
            "",
        ),
        ("person-course pairs (must take)", f"{len(pop.pairs):,}", "", ""),
        ("completions before the imports", f"{before:,}", "", ""),
        ("  pairs missing the latest one", f"{pop.counts['pairs missing the latest']:,}", "", ""),
        ("  exemptions", f"{pop.counts['exemptions']:,}", "", ""),
        (
            "status rows of the app (rollup) vs pairs generated",
            f"{totals['total']:,} vs {len(pop.pairs):,}",
            "equal",
            "OK" if totals["total"] == len(pop.pairs) else "MISMATCH",
        ),
        (
            "status: complete/due soon/overdue/not started/exempt",
            "/".join(
                f"{totals[k]:,}"
                for k in ("complete", "due_soon", "overdue", "not_started", "exempt")
            ),
            "",
            "",
        ),
        ("set-up (Core bulk inserts)", f"{setup_s:.1f} s", "", ""),
        (f"GET /training/department ({members} people) n", f"{dept_page['n']}", "", ""),
        ("  p50", f"{dept_page['p50_ms']:.1f} ms", "", ""),
        ("  p95", f"{dept_page['p95_ms']:.1f} ms", dept_target, verdict_ms(dept_page)),
        ("  SQL statements per request", f"{dept_page['queries']:g}", "", ""),
        ("  response size", f"{dept_page['bytes'] / 1000:.0f} kB", "", ""),
        ("GET /training/organization n", f"{org_page['n']}", "", ""),
        ("  p50", f"{org_page['p50_ms']:.1f} ms", "", ""),
        ("  p95", f"{org_page['p95_ms']:.1f} ms", dept_target, verdict_ms(org_page)),
        ("  SQL statements per request", f"{org_page['queries']:g}", "", ""),
        ("  response size", f"{org_page['bytes'] / 1000:.0f} kB", "", ""),
        service_row(f"status_rows(department {dept_code}), {svc_dept['size']} rows", svc_dept),
        service_row(f"rollup_table(), {svc_rollup['size']} cells", svc_rollup),
        service_row(f"status_rows(status=overdue), {svc_overdue['size']} rows", svc_overdue),
        (
            "import 1 row (start-up floor): wall / peak RSS",
            f"{imports['one']['seconds']:.2f} s / {imports['one']['rss_mb']:.0f} MB",
            "",
            "",
        ),
        (
            f"import {SMALL_ROWS:,} rows: wall / peak RSS",
            f"{small['seconds']:.2f} s / {small['rss_mb']:.0f} MB",
            "",
            "",
        ),
        (
            f"import {args.rows:,} rows: wall",
            f"{large['seconds']:.2f} s",
            f"< {IMPORT_TARGET_S:.0f} s",
            "PASS" if large["seconds"] < IMPORT_TARGET_S else "FAIL",
        ),
        (
            "  peak RSS (vs the 10,000-row file)",
            f"{large['rss_mb']:.0f} MB ({growth:+.0%})",
            f"<= +{MEMORY_GROWTH_LIMIT:.0%}",
            "PASS" if growth <= MEMORY_GROWTH_LIMIT else "FAIL",
        ),
        ("  added / already", f"{large['added']:,} / {large['already']:,}", "", ""),
        (
            f"import {args.rows:,} rows again: wall / peak RSS",
            f"{again['seconds']:.2f} s / {again['rss_mb']:.0f} MB",
            "",
            "",
        ),
        (
            "  added / already (idempotent)",
            f"{again['added']:,} / {again['already']:,}",
            "0 added",
            "PASS" if again["added"] == 0 and again["already"] == args.rows else "FAIL",
        ),
    ]


def service_row(label: str, figures: dict) -> tuple:
    return (
        f"{label} p50 / p95",
        f"{figures['p50_ms']:.1f} / {figures['p95_ms']:.1f} ms ({figures['queries']:g} SQL)",
        "",
        "",
    )


def verdict_ms(figures: dict) -> str:
    return "PASS" if figures["p95_ms"] < PAGE_P95_TARGET_MS else "FAIL"


def print_table(rows: list[tuple], command: str) -> None:
    headers = ("figure", "value", "target", "result")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    log("")
    log(f"command: {command}")
    log("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    log("  ".join("-" * w for w in widths))
    for row in rows:
        log("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000, help="people (default 10000)")
    parser.add_argument("--courses", type=int, default=5, help="courses (default 5)")
    parser.add_argument("--years", type=int, default=5, help="years of completions (default 5)")
    parser.add_argument(
        "--rows", type=int, default=50_000, help="rows of the import file (default 50000)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (a schema of its own is created and dropped); default SQLite",
    )
    parser.add_argument(
        "--requests", type=int, default=REQUESTS, help=f"timed requests (default {REQUESTS})"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / schema")
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile of the pages and the import"
    )
    args = parser.parse_args(argv)
    if min(args.people, args.courses, args.years, args.rows, args.requests) < 1:
        parser.error("--people, --courses, --years, --rows and --requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw = sys.argv[1:] if argv is None else argv
    command = shlex.join([".venv/bin/python", "bench/training.py", *raw])
    started = time.perf_counter()
    log(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    try:
        rows = run(args)
    except BenchError as exc:
        log(f"error: {exc}")
        return 1
    print_table(rows, command)
    log(
        f"\nwhole run: {time.perf_counter() - started:.0f} s; "
        f"load average at end: {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
