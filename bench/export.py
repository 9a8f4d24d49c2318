"""Benchmark: the auditor export at scale, and an evidence bundle holding a 1 GiB file.

A fresh app is built on a temporary SQLite file (or on a schema of its own in PostgreSQL
with --database-url), then:

1. data, inserted in bulk (Core): --controls monthly controls with checks over --months
   months (default 2,000 x 100 = 200,000 checks); 95 % attested with a statement, most of
   those reviewed (some returned with a comment), deficient ones with a finding; --evidence
   evidence items (sharing 100 small stored files) linked to checks; --events hash-chained
   audit-trail entries dated in the range.
2. training: --people people (round robin over departments, some managers) who must
   take --courses courses (most for everyone, some per department or for managers), with
   --years years of completion history, exemptions and failed results (the generator of
   bench/training.py).
   workbook: a child process (this script with --child workbook) runs
   `export.write_workbook` over the whole range, the evidence store given (as the CLI
   does), with the real sheets (Training is person x course). The child reports the
   export's wall time and its own peak RSS (VmHWM from /proc/self/status).
3. baseline, in this process and the same run: the workbook just written is read back
   (read-only mode, untimed) and a bare openpyxl write-only loop appends the same cell
   values to sheets of the same names and saves (timed). Ratio = export / baseline.
4. bundle: a --bundle-mib MiB evidence file (default 1 GiB) is stored and linked to one
   check; a child runs `export.write_bundle` for that check's category and month, then
   another child runs `export.verify_bundle` on the ZIP; wall time and peak RSS of each.
5. scaling (--scales, default 1,000, 10,000 and 50,000 people): for each size a fresh
   database holding only the training data, and a child exporting the workbook; seconds
   (wall and CPU) per 1,000 rows of the Training sheet. The per-row cost may grow by at
   most 1.2x from the smallest to the largest size (linear in people).

Targets (issue text): ratio <= 1.5, peak RSS < 300 MB, per-row growth <= 1.2. The script
only measures: it exits 0 whether or not the targets are met, and non-zero only when
something fails. It ends with Markdown sections for bench/RESULTS.md.

    .venv/bin/python bench/export.py                       # the full run (several minutes)
    .venv/bin/python bench/export.py --controls 200 --months 12 --people 2000 \\
        --bundle-mib 64 --scales 500,2000                   # quick smoke run
    .venv/bin/python bench/export.py --skip-main            # the scaling part only
    .venv/bin/python bench/export.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from auditapp import create_app  # noqa: E402
from auditapp.extensions import db  # noqa: E402
from auditapp.models import (  # noqa: E402
    Attestation,
    AuditEvent,
    Check,
    Control,
    Evidence,
    EvidenceLink,
    Finding,
    Review,
)
from auditapp.services import audit, export, periods, users  # noqa: E402
from auditapp.services.catalog import CATEGORIES  # noqa: E402
from auditapp.storage import CHUNK_SIZE  # noqa: E402
from bench.training import build_population  # noqa: E402 (the same people and history)

RATIO_TARGET = 1.5
RSS_TARGET_MB = 300
FIRST_DAY = date(2020, 4, 1)
BATCH = 5000
STATEMENTS = [
    "手順どおり点検し、記録に不備はありませんでした。Checked as described; no issues found.",
    "アクセスログを抽出して確認しました。異常なアクセスはありません。",
    "点検で記録の不備を確認しました。Records were incomplete for part of the period.",
    "当期は該当する取扱いがありませんでした。No such processing this period.",
]
GROWTH_TARGET = 1.2  # per-row cost, largest scale / smallest


def log(message: str) -> None:
    print(message, flush=True)


class BenchError(RuntimeError):
    """The benchmark could not run (as opposed to a target being missed)."""


# --- the database and app --------------------------------------------------------------


@contextmanager
def database(url: str | None, workdir: Path, keep: bool):
    """The URL and engine options of a database of this run's own; dropped afterwards."""
    if not url:
        yield f"sqlite:///{workdir / 'bench.db'}", {}
        return
    if not url.startswith("postgresql"):
        raise BenchError(f"--database-url: only PostgreSQL URLs are supported, got {url!r}")
    schema = f"bench_export_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, {"connect_args": {"options": f"-csearch_path={schema}"}}
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def build_app(url: str, engine_options: dict, instance: Path, create: bool = False):
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
    if create:
        with app.app_context():
            db.create_all()
    return app


# --- 1. data ----------------------------------------------------------------------------


def insert(session, table, rows: list[dict]) -> None:
    for i in range(0, len(rows), BATCH):
        session.execute(sa.insert(table), rows[i : i + BATCH])


def create_data(app, args) -> dict:
    """Controls, checks, attestations, reviews, findings, evidence and audit entries."""
    session = db.session
    store = app.extensions["evidence_store"]
    now = datetime.now(UTC)
    managers = [
        users.create(
            session,
            "bench",
            {
                "employee_id": f"BM{i:03d}",
                "name": f"管理者 {i}",
                "email": f"manager{i}@bench.example.jp",
                "roles": ["manager"],
            },
            password_hash="scrypt:bench-no-login",
        )[0]
        for i in range(1, 11)
    ]
    admin = users.create(
        session,
        "bench",
        {
            "employee_id": "BA1",
            "name": "審査 管理者",
            "email": "a@bench.example.jp",
            "roles": ["admin"],
        },
        password_hash="scrypt:bench-no-login",
    )[0]
    session.commit()
    controls = []
    for n in range(1, args.controls + 1):
        category = CATEGORIES[(n - 1) % len(CATEGORIES)].id
        content = {
            "id": f"S-{n:04d}",
            "category": category,
            "title": {"ja": f"ベンチマーク管理策 {n}", "en": f"Benchmark control {n}"},
            "requirement": {
                "ja": f"管理策 {n} の要求事項を満たしていること。",
                "en": f"Requirement of control {n} is met.",
            },
            "references": {"policy": ["第2条の2(1)"], "guideline": ["通則編 10-1"], "act": []},
        }
        content_json = audit.canonical_json(content)
        controls.append(
            {
                "code": f"S-{n:04d}",
                "category": category,
                "position": n,
                "title_ja": content["title"]["ja"],
                "title_en": content["title"]["en"],
                "frequency": "monthly",
                "evidence_required": False,
                "content_json": content_json,
                "content_hash": hashlib.sha256(content_json.encode()).hexdigest(),
                "version": 1,
                "source_file": "bench",
                "status": "active",
                "synced_at": now,
                "owner_id": managers[(n - 1) % len(managers)].id,
                "applicable": True,
                "checks_from": FIRST_DAY,
            }
        )
    insert(session, Control.__table__, controls)
    control_ids = [i for (i,) in session.execute(sa.select(Control.id).order_by(Control.id))]
    months = []
    period = periods.period_for(FIRST_DAY, "monthly")
    for _ in range(args.months):
        months.append((period, periods.due_date(period)))
        period = periods.next_period(period)
    checks = [
        {
            "control_id": cid,
            "period_key": p.key,
            "period_start": p.start,
            "period_end": p.end,
            "due_date": due,
            "fiscal_year": p.fiscal_year,
            "frequency": "monthly",
            "control_version": 1,
            "control_content_hash": "0" * 64,
            "status": "open",
            "created_at": now,
        }
        for cid in control_ids
        for p, due in months
    ]
    insert(session, Check.__table__, checks)
    session.commit()
    rows = session.execute(sa.select(Check.id, Check.control_id, Check.period_end)).all()
    attestations, statuses, findings = [], {}, []
    for n, (check_id, control_id, end) in enumerate(rows):
        if n % 20 == 19:
            continue  # 5 % stay open
        m = control_id % 10 + 1
        result = "deficient" if n % 20 == 7 else "not_applicable" if n % 20 == 3 else "effective"
        at = datetime.combine(end + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
        attestations.append(
            {
                "check_id": check_id,
                "sequence": 1,
                "attester_id": managers[control_id % 10].id,
                "attester_name": f"管理者 {m} <manager{m}@bench.example.jp>",
                "result": result,
                "statement": STATEMENTS[n % len(STATEMENTS)],
                "attested_at": at,
                "evidence_json": "[]",
            }
        )
        statuses[check_id] = ("attested", at)
        if result == "deficient":
            findings.append(
                {
                    "check_id": check_id,
                    "control_id": control_id,
                    "description": "記録の一部が欠落していた。",
                    "risk": "medium",
                    "remediation_plan": "記録様式を改め、翌月に再点検する。",
                    "owner_id": managers[control_id % 10].id,
                    "due_date": end + timedelta(days=60),
                    "status": "closed" if n % 40 else "open",
                    "created_at": at,
                }
            )
    insert(session, Attestation.__table__, attestations)
    insert(session, Finding.__table__, findings)
    session.commit()
    reviews = []
    for attestation_id, check_id, at in session.execute(
        sa.select(Attestation.id, Attestation.check_id, Attestation.attested_at)
    ):
        if check_id % 10 == 0:
            continue  # awaiting review
        returned = check_id % 50 == 1
        reviews.append(
            {
                "check_id": check_id,
                "attestation_id": attestation_id,
                "reviewer_id": admin.id,
                "reviewer_name": "審査 管理者 <a@bench.example.jp>",
                "decision": "returned" if returned else "accepted",
                "comment": "証跡の日付が期間外です。" if returned else None,
                "reviewed_at": at + timedelta(days=2),
            }
        )
        statuses[check_id] = "returned" if returned else "accepted"
    insert(session, Review.__table__, reviews)
    for status in ("attested", "accepted", "returned"):
        ids = [
            k
            for k, v in statuses.items()
            if v == status or (isinstance(v, tuple) and v[0] == status)
        ]
        for i in range(0, len(ids), BATCH):
            session.execute(
                sa.update(Check).where(Check.id.in_(ids[i : i + BATCH])).values(status=status)
            )
    session.commit()
    blobs = [store.put_stream([f"%PDF-1.4\nbench evidence {n}\n".encode()]) for n in range(100)]
    evidence, links = [], []
    step = max(1, len(rows) // max(1, args.evidence))
    for n in range(args.evidence):
        blob = blobs[n % len(blobs)]
        evidence.append(
            {
                "sha256": blob.sha256,
                "size": blob.size,
                "media_type": "application/pdf",
                "filename": f"点検記録_{n:05d}.pdf",
                "description": "月次点検の記録",
                "uploaded_by_label": "管理者 1 <manager1@bench.example.jp>",
                "uploaded_at": now,
                "retention_until": date(2035, 3, 31),
                "version": 1,
                "status": "active",
            }
        )
    insert(session, Evidence.__table__, evidence)
    evidence_ids = [i for (i,) in session.execute(sa.select(Evidence.id).order_by(Evidence.id))]
    for n, evidence_id in enumerate(evidence_ids):
        links.append(
            {
                "evidence_id": evidence_id,
                "object_type": "check",
                "object_id": str(rows[(n * step) % len(rows)][0]),
                "created_at": now,
            }
        )
    insert(session, EvidenceLink.__table__, links)
    session.commit()
    add_audit_events(session, args.events, months[0][0].start, months[-1][0].end)
    return {
        "checks": len(rows),
        "attestations": len(attestations),
        "reviews": len(reviews),
        "findings": len(findings),
        "evidence": len(evidence),
    }


def add_audit_events(session, count: int, first: date, last: date) -> None:
    """`count` hash-chained entries spread over the range (after the existing ones)."""
    prev = audit.head(session)
    start = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    span = (last - first).total_seconds()
    rows = []
    for n in range(count):
        event = SimpleNamespace(
            at=start + timedelta(seconds=span * n / max(1, count)),
            actor_id=None,
            actor_label="bench",
            action="check.attest",
            object_type="check",
            object_id=str(n + 1),
            before_json=None,
            after_json=audit.canonical_json({"result": "effective", "statement": STATEMENTS[0]}),
            client_addr="cli",
            request_id=None,
        )
        digest = audit.entry_hash(prev, event)
        rows.append(vars(event) | {"prev_hash": prev, "hash": digest})
        prev = digest
    insert(session, AuditEvent.__table__, rows)
    session.commit()


def add_big_file(app, mib: int, check_id: int) -> Evidence:
    """A --bundle-mib file stored (streamed) and linked to a check."""
    store = app.extensions["evidence_store"]
    pending = store.begin()
    block = os.urandom(CHUNK_SIZE)
    for n in range(mib):
        pending.write(n.to_bytes(8, "big") + block[8:])
    blob = store.commit(pending)
    item = Evidence(
        sha256=blob.sha256,
        size=blob.size,
        media_type="video/mp4",
        filename="防犯カメラ映像.mp4",
        uploaded_by_label="bench",
        uploaded_at=datetime.now(UTC),
        retention_until=date(2035, 3, 31),
        status="active",
        version=1,
        links=[EvidenceLink(object_type="check", object_id=str(check_id))],
    )
    db.session.add(item)
    db.session.commit()
    return item


# --- the children ------------------------------------------------------------------------


def peak_rss_kb() -> int:
    """This process's peak resident set size (VmHWM), in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(args) -> None:
    """Run one export step in this (child) process; print a JSON line with its figures."""
    options = json.loads(args.engine_options or "{}")
    app = build_app(args.url, options, Path(args.instance))
    req = export.ExportRequest(
        date.fromisoformat(args.scope_from),
        date.fromisoformat(args.scope_to),
        [c for c in (args.categories or "").split(",") if c],
        "ja",
        "Asia/Tokyo",
    )
    figures: dict = {}
    with app.app_context():
        store = app.extensions["evidence_store"]
        cpu = time.process_time()
        started = time.perf_counter()
        if args.child == "workbook":
            result = export.write_workbook(
                db.session, req, args.out, generated_by="bench", store=store
            )
            figures["rows"] = result.rows
        elif args.child == "bundle":
            result = export.write_bundle(db.session, store, req, args.out, generated_by="bench")
            figures["rows"] = result.rows
            figures["bundle_files"] = result.bundle_files
            figures["bytes"] = result.size
        else:
            figures["problems"] = export.verify_bundle(args.out)
        figures["seconds"] = time.perf_counter() - started
        figures["cpu_seconds"] = time.process_time() - cpu
    figures["peak_rss_kb"] = peak_rss_kb()
    print("RESULT " + json.dumps(figures, ensure_ascii=False), flush=True)


def run_child(kind: str, url: str, engine_options: dict, instance: Path, out: Path, **kw) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--url",
        url,
        "--engine-options",
        json.dumps(engine_options),
        "--instance",
        str(instance),
        "--out",
        str(out),
        "--scope-from",
        kw.get("scope_from", FIRST_DAY).isoformat(),
        "--scope-to",
        kw.get("scope_to", FIRST_DAY).isoformat(),
        "--categories",
        ",".join(kw.get("categories", [])),
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"child {kind} failed:\n{done.stdout}\n{done.stderr}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    figures = json.loads(line[len("RESULT ") :])
    figures["process_seconds"] = time.perf_counter() - started
    return figures


# --- 3. the baseline -----------------------------------------------------------------------


def baseline(workbook: Path, out: Path) -> tuple[float, float, int]:
    """Read the exported workbook back (untimed), then time a bare write-only loop writing
    the same values to sheets of the same names. Returns (seconds, CPU seconds, cells)."""
    from openpyxl import Workbook, load_workbook

    source = load_workbook(workbook, read_only=True)
    sheets = []
    cells = 0
    for ws in source.worksheets:
        rows = [row for row in ws.iter_rows(values_only=True)]
        cells += sum(len(r) for r in rows)
        sheets.append((ws.title, rows))
    source.close()
    cpu = time.process_time()
    started = time.perf_counter()
    wb = Workbook(write_only=True)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(out)
    return time.perf_counter() - started, time.process_time() - cpu, cells


# --- main -------------------------------------------------------------------------------------


def mb(kb: int) -> float:
    return kb / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--controls", type=int, default=2000)
    parser.add_argument("--months", type=int, default=100)
    parser.add_argument("--people", type=int, default=52_000, help="~500,000 training rows")
    parser.add_argument("--courses", type=int, default=12)
    parser.add_argument("--years", type=int, default=3, help="Years of completion history.")
    parser.add_argument(
        "--scales", default="1000,10000,50000", help="People at each scaling point."
    )
    parser.add_argument("--skip-main", action="store_true", help="Only the scaling part.")
    parser.add_argument("--repeats", type=int, default=3, help="Exports per scaling point.")
    parser.add_argument("--evidence", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bundle-mib", type=int, default=1024)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workdir", default=None, help="Where temporary files go.")
    parser.add_argument("--keep", action="store_true", help="Keep the database and files.")
    # Child mode (internal).
    parser.add_argument("--child", choices=["workbook", "bundle", "verify"], help=argparse.SUPPRESS)
    for name in (
        "--url",
        "--engine-options",
        "--instance",
        "--out",
        "--scope-from",
        "--scope-to",
        "--categories",
    ):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench/export.py: {exc}", file=sys.stderr)
        return 1


def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.workdir))
    log(f"bench/export.py: work folder {workdir}")
    try:
        if not args.skip_main:
            with database(args.database_url, workdir, args.keep) as (url, options):
                measure(args, workdir, url, options)
        scales = [int(n) for n in args.scales.split(",") if n.strip()]
        if scales:
            scaling(args, workdir, scales)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(args, workdir: Path, url: str, options: dict) -> None:
    load_before = os.getloadavg()[0]
    instance = workdir / "instance"
    app = build_app(url, options, instance, create=True)
    started = time.perf_counter()
    with app.app_context():
        counts = create_data(app, args)
        first_day = FIRST_DAY
        last_day = db.session.scalar(sa.select(sa.func.max(Check.period_end)))
        db.session.rollback()
    build_population(app, training_args(args, args.people), date.today())
    log(
        f"data: {counts['checks']:,} checks, {counts['attestations']:,} attestations, "
        f"{counts['reviews']:,} reviews, {counts['findings']:,} findings, "
        f"{counts['evidence']:,} evidence items, {args.events:,} audit entries, "
        f"{args.people:,} people x {args.courses} courses "
        f"({time.perf_counter() - started:.1f} s)"
    )

    book = workdir / "report.xlsx"
    wb_fig = run_child(
        "workbook",
        url,
        options,
        instance,
        book,
        scope_from=first_day,
        scope_to=last_day,
    )
    log(
        f"workbook: {wb_fig['seconds']:.1f} s export ({wb_fig['process_seconds']:.1f} s with "
        f"start-up), peak RSS {mb(wb_fig['peak_rss_kb']):.0f} MB, rows {wb_fig['rows']}"
    )
    base_seconds, base_cpu, cells = baseline(book, workdir / "baseline.xlsx")
    ratio = wb_fig["seconds"] / base_seconds
    cpu_ratio = wb_fig["cpu_seconds"] / base_cpu
    log(
        f"baseline: bare write-only loop {base_seconds:.1f} s ({base_cpu:.1f} s CPU), "
        f"{cells:,} cells; ratio {ratio:.2f} wall, {cpu_ratio:.2f} CPU"
    )

    bundle_fig = verify_fig = None
    if args.bundle_mib:
        with app.app_context():
            target = db.session.execute(
                sa.select(Check.id, Control.category, Check.period_start, Check.period_end)
                .join(Control, Control.id == Check.control_id)
                .order_by(Check.id.desc())
                .limit(1)
            ).one()
            started = time.perf_counter()
            big = add_big_file(app, args.bundle_mib, target.id)
            seconds = time.perf_counter() - started
            log(f"bundle: stored a {big.size / 2**20:,.0f} MiB file ({seconds:.1f} s)")
        zip_path = workdir / "bundle.zip"
        bundle_fig = run_child(
            "bundle",
            url,
            options,
            instance,
            zip_path,
            scope_from=target.period_start,
            scope_to=target.period_end,
            categories=[target.category],
        )
        log(
            f"bundle: {bundle_fig['seconds']:.1f} s, {bundle_fig['bundle_files']} evidence "
            f"files, {bundle_fig['bytes'] / 2**20:,.0f} MiB ZIP, "
            f"peak RSS {mb(bundle_fig['peak_rss_kb']):.0f} MB"
        )
        verify_fig = run_child("verify", url, options, instance, zip_path)
        log(
            f"verify: {verify_fig['seconds']:.1f} s, "
            f"peak RSS {mb(verify_fig['peak_rss_kb']):.0f} MB, problems {verify_fig['problems']}"
        )
    base = {"seconds": base_seconds, "cpu_seconds": base_cpu, "cells": cells}
    report(args, counts, wb_fig, base, bundle_fig, verify_fig, url, load_before)


def training_args(args, people: int) -> SimpleNamespace:
    """The arguments bench/training.py's generator takes."""
    return SimpleNamespace(people=people, courses=args.courses, years=args.years)


def scaling(args, workdir: Path, scales: list[int]) -> None:
    """Seconds per 1,000 Training rows at each number of people: a database per size,
    then --repeats rounds of one export per size (interleaved, so a busy machine slows
    every size alike); the median of each size's runs is reported."""
    load_before = os.getloadavg()[0]
    with ExitStack() as stack:
        targets = []
        for people in scales:
            folder = workdir / f"scale-{people}"
            folder.mkdir()
            url, options = stack.enter_context(database(args.database_url, folder, args.keep))
            instance = folder / "instance"
            app = build_app(url, options, instance, create=True)
            started = time.perf_counter()
            build_population(app, training_args(args, people), date.today())
            log(f"scaling: {people:,} people built ({time.perf_counter() - started:.1f} s)")
            targets.append((people, url, options, instance, folder / "report.xlsx"))
        runs: dict[int, list[dict]] = {people: [] for people in scales}
        for _round in range(args.repeats):
            for people, url, options, instance, out in targets:
                fig = run_child(
                    "workbook",
                    url,
                    options,
                    instance,
                    out,
                    scope_from=FIRST_DAY,
                    scope_to=FIRST_DAY,
                )
                runs[people].append(fig)
                rows = fig["rows"]["Training"]
                log(
                    f"scaling: {people:,} people, {rows:,} Training rows: "
                    f"{fig['seconds']:.1f} s wall, {fig['cpu_seconds']:.1f} s CPU, "
                    f"peak RSS {mb(fig['peak_rss_kb']):.0f} MB"
                )
    figures = []
    for people in scales:
        done = runs[people]
        rows = done[0]["rows"]["Training"]
        seconds = statistics.median(f["seconds"] for f in done)
        cpu = statistics.median(f["cpu_seconds"] for f in done)
        figures.append(
            {
                "people": people,
                "training_rows": rows,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "wall_per_1000": 1000 * seconds / rows,
                "cpu_per_1000": 1000 * cpu / rows,
                "peak_rss_kb": max(f["peak_rss_kb"] for f in done),
            }
        )
    report_scaling(args, figures, load_before)


def report_scaling(args, figures: list[dict], load_before: float) -> None:
    first, last = figures[0], figures[-1]
    wall = last["wall_per_1000"] / first["wall_per_1000"]
    cpu = last["cpu_per_1000"] / first["cpu_per_1000"]
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    lines = [
        "",
        "### Export time per row by number of people (bench/export.py, scaling)",
        "",
        f"Load average {load}; {args.courses} courses, {args.years} years of completions; "
        "each size a fresh database with only the training data; the whole workbook "
        f"export (`write_workbook`) in a child process, median of {args.repeats} interleaved "
        "runs, per 1,000 rows of the Training sheet.",
        "",
        "| people | Training rows | export wall / CPU | per 1,000 rows wall / CPU | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f['people']:,} | {f['training_rows']:,} | {f['seconds']:.2f} s / "
            f"{f['cpu_seconds']:.2f} s | {f['wall_per_1000']:.3f} s / "
            f"{f['cpu_per_1000']:.3f} s | {mb(f['peak_rss_kb']):.0f} MB |"
        )
    verdict = "met" if max(wall, cpu) <= GROWTH_TARGET else "MISSED"
    lines += [
        "",
        f"Per-row cost, {last['people']:,} people / {first['people']:,}: {wall:.2f} wall, "
        f"{cpu:.2f} CPU (target <= {GROWTH_TARGET}: {verdict}).",
        "",
    ]
    log("\n".join(lines))


def row(measure: str, value: str, target: str = "") -> str:
    return f"| {measure} | {value} | {target} |"


def report(args, counts, wb_fig, base, bundle_fig, verify_fig, url, load_before) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    rss = mb(wb_fig["peak_rss_kb"])
    ratio = wb_fig["seconds"] / base["seconds"]
    cpu_ratio = wb_fig["cpu_seconds"] / base["cpu_seconds"]
    load = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    command = " ".join(["bench/export.py", *sys.argv[1:]])
    lines = [
        "",
        "## Auditor export (bench/export.py)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}; load average {load}): "
        f"`{command}`.",
        "",
        f"Data: {counts['checks']:,} checks ({args.controls:,} monthly controls x {args.months} "
        f"months), {counts['attestations']:,} attestations, {counts['reviews']:,} reviews, "
        f"{counts['findings']:,} findings, {counts['evidence']:,} evidence items, "
        f"{args.events:,} audit entries; {args.people:,} people who must take some of "
        f"{args.courses} courses ({args.years} years of completions).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        row(
            "workbook export (`write_workbook` in a child), wall / CPU time",
            f"{wb_fig['seconds']:.1f} s / {wb_fig['cpu_seconds']:.1f} s",
        ),
        row(
            f"bare openpyxl write-only loop, same {base['cells']:,} cell values, wall / CPU",
            f"{base['seconds']:.1f} s / {base['cpu_seconds']:.1f} s",
        ),
        row(
            "ratio export / bare loop, wall time",
            f"{ratio:.2f}",
            f"<= {RATIO_TARGET} ({verdict(ratio <= RATIO_TARGET)})",
        ),
        row(
            "ratio export / bare loop, CPU time (steadier on a busy machine)",
            f"{cpu_ratio:.2f}",
            f"<= {RATIO_TARGET} ({verdict(cpu_ratio <= RATIO_TARGET)})",
        ),
        row(
            "workbook export, peak RSS (VmHWM)",
            f"{rss:.0f} MB",
            f"< {RSS_TARGET_MB} MB ({verdict(rss < RSS_TARGET_MB)})",
        ),
    ]
    if bundle_fig:
        brss = mb(bundle_fig["peak_rss_kb"])
        vrss = mb(verify_fig["peak_rss_kb"])
        lines += [
            row(
                f"bundle with a {args.bundle_mib:,} MiB evidence file, wall time",
                f"{bundle_fig['seconds']:.1f} s",
            ),
            row(
                "bundle, peak RSS (VmHWM)",
                f"{brss:.0f} MB",
                f"< {RSS_TARGET_MB} MB ({verdict(brss < RSS_TARGET_MB)})",
            ),
            row(
                "`verify_bundle` of that ZIP, wall time / peak RSS",
                f"{verify_fig['seconds']:.1f} s / {vrss:.0f} MB",
            ),
        ]
    rows = ", ".join(f"{k} {v:,}" for k, v in wb_fig["rows"].items())
    lines += ["", f"Rows per sheet: {rows}.", ""]
    log("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
