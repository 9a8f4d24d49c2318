"""Benchmark: bulk people imports, and sign-in while one runs (issue 11 item 8).

For each backend (SQLite file; PostgreSQL with --database-url, on a schema of its own) and
each --sizes N (default 4,000 and 20,000), a fresh database gets 6 departments and one
person with a password who signs in. Then, in the same run:

1. baseline: another process (multiprocessing, spawn) signs in through the web app's
   POST /login (a test client on the same database, CSRF off) every 0.1 s after the
   previous answer for --baseline seconds with no import: p50/p95/max latency and
   failures (status != 302).
2. import: this process imports an HR CSV of N new people with `user_import.import_users`
   and commits, as `auditapp users import FILE` does, while the other process keeps
   signing in. Sign-ins whose request overlapped the import window (first statement to
   commit) are compared with the baseline: p50/p95/max, failures and the ratio p95 during
   / p95 baseline. The import's wall time and people per second are printed.
3. re-import of the same file (every row unchanged: the checking alone), timed the same way.
4. checks: N + 1 people in the database and `audit.verify` intact.

For scale, the cost of what the import no longer does is measured too: one scrypt hash
(`auth.hash_password`, mean of 10) times N, the time the previous import spent hashing.

The script only measures (exit 0); it exits non-zero only when the run itself fails.

    .venv/bin/python bench/user_import.py
    .venv/bin/python bench/user_import.py --sizes 1000 --baseline 3     # quick
    .venv/bin/python bench/user_import.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from auditapp import create_app  # noqa: E402
from auditapp.extensions import db  # noqa: E402
from auditapp.models import Department, Role, User, UserRole  # noqa: E402
from auditapp.services import audit, auth, user_import  # noqa: E402

SIGNER_EMAIL = "signer@bench.example.jp"
SIGNER_PASSWORD = "bench-signer-password-1"
DEPARTMENTS = [("GA", "総務部"), ("SALES", "営業部"), ("DEV", "開発部"), ("HR", "人事部")]
DEPARTMENTS += [("FIN", "経理部"), ("LEGAL", "法務部")]
SETTLE_S = 1.0  # sign-ins after the import, before the sampler stops
# Pause between two sign-ins of the sampler. Back to back, sign-ins would leave SQLite's
# one writer no gap: a sign-in holds the write lock while it checks scrypt (~0.1-0.25 s).
PAUSE_S = 0.1
HASH_SAMPLES = 10


def log(message: str = "") -> None:
    print(message, flush=True)


# --- databases and apps ---------------------------------------------------------------------


@contextmanager
def database(backend: str, base_url: str | None, workdir: Path):
    """A fresh database: an SQLite file, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.db'}", {}
        return
    schema = f"bench_users_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base_url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def build_app(url: str, engine_options: dict, instance: str, **extra):
    return create_app(
        {
            "SECRET_KEY": "bench-secret",
            "INSTANCE_PATH": instance,
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            "SCHEDULER_IN_PROCESS": False,
            # The sampler signs in thousands of times; never let throttling answer for it.
            "LOGIN_MAX_FAILURES_PER_ACCOUNT": 10**9,
            "LOGIN_MAX_FAILURES_PER_CLIENT": 10**9,
        }
        | extra
    )


def prepare(app) -> None:
    """Schema, departments and the person who signs in."""
    with app.app_context():
        db.create_all()
        db.session.add_all(Department(code=c, name=n, name_en=c.title()) for c, n in DEPARTMENTS)
        signer = User(
            employee_id="S0001",
            name="Signer",
            email=SIGNER_EMAIL,
            active=True,
            password_hash=auth.hash_password(SIGNER_PASSWORD),
            session_version=1,
        )
        signer.role_rows = [UserRole(role=Role.EMPLOYEE.value)]
        db.session.add(signer)
        db.session.commit()


def people_csv(count: int) -> bytes:
    """An HR file of `count` new people over the departments, 5 % managers."""
    lines = ["employee_id,name,email,department,roles,hired_on"]
    for i in range(count):
        dept = DEPARTMENTS[i % len(DEPARTMENTS)][0]
        roles = "manager;employee" if i % 20 == 0 else "employee"
        year = 2000 + i % 26
        lines.append(f"E{i:06d},社員 {i},person{i}@bench.example.jp,{dept},{roles},{year}-04-01")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


# --- the sign-in sampler (another process) ------------------------------------------------------


def sampler(url: str, engine_options: dict, instance: str, stop, ready, out) -> None:
    """Sign in back to back until `stop`; send (start, seconds, status) of each attempt."""
    app = build_app(url, engine_options, instance, WTF_CSRF_ENABLED=False)
    samples = []
    ready.set()
    while not stop.is_set():
        client = app.test_client()
        start = time.monotonic()
        try:
            status = client.post(
                "/login", data={"email": SIGNER_EMAIL, "password": SIGNER_PASSWORD}
            ).status_code
        except Exception:  # noqa: BLE001 - a crash counts as a failed sign-in
            status = -1
        samples.append((start, time.monotonic() - start, status))
        time.sleep(PAUSE_S)
    out.put(samples)


class Sampler:
    """The sampler process: started, then its samples collected when stopped."""

    def __init__(self, url: str, engine_options: dict, instance: str):
        ctx = multiprocessing.get_context("spawn")
        self.stop, self.ready, self.out = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=sampler,
            args=(url, engine_options, instance, self.stop, self.ready, self.out),
        )

    def __enter__(self) -> Sampler:
        self.process.start()
        if not self.ready.wait(120):
            raise RuntimeError("the sign-in process did not start")
        return self

    def collect(self) -> list[tuple[float, float, int]]:
        self.stop.set()
        samples = self.out.get(timeout=300)
        self.process.join(60)
        return samples

    def __exit__(self, *exc) -> None:
        if self.process.is_alive():
            self.process.kill()


# --- measuring --------------------------------------------------------------------------------


def summary(samples: list[tuple[float, float, int]]) -> dict:
    """Count, failures and latency percentiles (ms) of sign-in samples."""
    ok = sorted(s[1] * 1000 for s in samples if s[2] == 302)
    failed = sum(1 for s in samples if s[2] != 302)
    if not ok:
        return {"n": len(samples), "failed": failed, "p50": 0.0, "p95": 0.0, "max": 0.0}
    p95 = ok[min(len(ok) - 1, round(0.95 * (len(ok) - 1)))]
    return {
        "n": len(samples),
        "failed": failed,
        "p50": statistics.median(ok),
        "p95": p95,
        "max": ok[-1],
    }


def overlapping(samples, start: float, end: float):
    """The sign-ins whose request overlapped [start, end]."""
    return [s for s in samples if s[0] <= end and s[0] + s[1] >= start]


def run_import(app, data: bytes) -> tuple[float, float, user_import.ImportResult]:
    """Import as the CLI does (one transaction, committed); returns its window and result."""
    with app.app_context():
        db.session.info[audit.META_KEY] = {"client_addr": "cli", "request_id": None}
        start = time.monotonic()
        result = user_import.import_users(db.session, "cli:bench", io.BytesIO(data))
        if not result.written:
            db.session.rollback()
            raise RuntimeError(f"import refused: {[str(e) for e in result.errors[:5]]}")
        db.session.commit()
        end = time.monotonic()
        db.session.remove()
    return start, end, result


def hash_seconds() -> float:
    """Mean time of one scrypt password hash (what the previous import did per person)."""
    start = time.perf_counter()
    for i in range(HASH_SAMPLES):
        auth.hash_password(f"bench-password-{i}")
    return (time.perf_counter() - start) / HASH_SAMPLES


def fmt(s: dict) -> str:
    return (
        f"n={s['n']:5d} failed={s['failed']:3d}  p50 {s['p50']:7.1f} ms  "
        f"p95 {s['p95']:7.1f} ms  max {s['max']:8.1f} ms"
    )


def bench_size(backend: str, base_url, count: int, args, workdir: Path, per_hash: float):
    with database(backend, base_url, workdir) as (url, options):
        instance = str(workdir / f"instance-{uuid.uuid4().hex[:6]}")
        app = build_app(url, options, instance)
        prepare(app)
        data = people_csv(count)
        with Sampler(url, options, instance) as sampling:
            base_start = time.monotonic()
            time.sleep(args.baseline)
            base_end = time.monotonic()
            start, end, result = run_import(app, data)
            time.sleep(SETTLE_S)
            re_start, re_end, again = run_import(app, data)
            time.sleep(SETTLE_S)
            samples = sampling.collect()
        with app.app_context():
            people = db.session.scalar(sa.select(sa.func.count()).select_from(User))
            chain = audit.verify(db.session)
            db.session.remove()
        with app.app_context():
            db.engine.dispose()
    base = summary([s for s in samples if base_start <= s[0] and s[0] + s[1] <= base_end])
    during = summary(overlapping(samples, start, end))
    during_re = summary(overlapping(samples, re_start, re_end))
    seconds = end - start
    log(f"\n== {backend}: {count:,} people")
    log(
        f"import      {seconds:7.2f} s  ({count / seconds:,.0f} people/s)  created "
        f"{result.created:,}; re-import {re_end - re_start:6.2f} s  "
        f"(unchanged {again.unchanged:,})"
    )
    log(f"scrypt alone (the previous import's hashing) {per_hash * count:7.1f} s")
    log(f"sign-in, no import        {fmt(base)}")
    log(f"sign-in, during import    {fmt(during)}")
    log(f"sign-in, during re-import {fmt(during_re)}")
    ratio = during["p95"] / base["p95"] if base["p95"] else float("nan")
    log(f"p95 during / p95 baseline = {ratio:.2f}; max during = {during['max'] / 1000:.2f} s")
    log(f"people in database {people:,} (expected {count + 1:,}); audit chain ok: {chain.ok}")
    if people != count + 1 or not chain.ok or again.unchanged != count:
        raise RuntimeError("the import did not write what it should")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,20000", help="people per import, comma list")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of baseline")
    parser.add_argument("--database-url", help="PostgreSQL URL (else SQLite only)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = ["sqlite"] + (["postgresql"] if args.database_url else [])
    per_hash = hash_seconds()
    log(f"one scrypt hash: {per_hash * 1000:.1f} ms (mean of {HASH_SAMPLES})")
    with tempfile.TemporaryDirectory(prefix="auditapp-bench-users-") as tmp:
        for backend in backends:
            for count in sizes:
                bench_size(backend, args.database_url, count, args, Path(tmp), per_hash)
    return 0


if __name__ == "__main__":
    sys.exit(main())
