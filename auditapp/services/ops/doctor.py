"""`auditapp doctor`: one health check per line (OK, WARN or FAIL)."""

from __future__ import annotations

import enum
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from auditapp import database
from auditapp.errors import OpsError
from auditapp.models.types import utcnow
from auditapp.services import audit
from auditapp.services import evidence as evidence_service
from auditapp.services.ops import schema
from auditapp.storage import EvidenceStore


class Health(enum.StrEnum):
    """How one doctor check came out."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Diagnosis:
    """One line of the doctor's report."""

    status: Health
    name: str
    detail: str


# The value instance/config.example.py ships with.
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
LOW_DISK_BYTES = 1024**3
TICK_STALE_AFTER = timedelta(days=2)
_GIB = 1024**3


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def check_config(config: Mapping[str, Any]) -> list[Diagnosis]:
    """Secret key, cookie security against BASE_URL, debug mode."""
    found = []
    key = config.get("SECRET_KEY")
    if not key:
        found.append(Diagnosis(Health.FAIL, "secret key", "SECRET_KEY is not set"))
    elif key == EXAMPLE_SECRET_KEY:
        found.append(
            Diagnosis(
                Health.FAIL,
                "secret key",
                "SECRET_KEY is the example value from instance/config.example.py; set a random "
                "one: python3 -c 'import secrets; print(secrets.token_hex(32))'",
            )
        )
    elif len(str(key)) < MIN_SECRET_KEY_LENGTH:
        found.append(
            Diagnosis(
                Health.WARN,
                "secret key",
                f"SECRET_KEY is short ({len(str(key))} characters); use at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters",
            )
        )
    else:
        found.append(Diagnosis(Health.OK, "secret key", f"set ({len(str(key))} characters)"))
    https = str(config.get("BASE_URL") or "").lower().startswith("https://")
    secure = bool(config.get("SESSION_COOKIE_SECURE"))
    if https and not secure:
        found.append(
            Diagnosis(
                Health.WARN,
                "session cookies",
                "BASE_URL is https but SESSION_COOKIE_SECURE is off; set "
                "SESSION_COOKIE_SECURE = True so cookies never travel over plain http",
            )
        )
    elif secure:
        found.append(Diagnosis(Health.OK, "session cookies", "Secure, HttpOnly, SameSite"))
    else:
        found.append(
            Diagnosis(
                Health.OK,
                "session cookies",
                "BASE_URL is http (set SESSION_COOKIE_SECURE = True when serving over HTTPS)",
            )
        )
    if config.get("DEBUG"):
        found.append(Diagnosis(Health.WARN, "debug", "DEBUG is on; never in production"))
    return found


def migration_heads(migrations_dir: str) -> tuple[list[str], set[str]]:
    """The head revision(s) of the migrations folder and every revision it knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    script = ScriptDirectory.from_config(cfg)
    return list(script.get_heads()), {s.revision for s in script.walk_revisions()}


def _check_migrations(session: Session, migrations_dir: str) -> Diagnosis:
    heads, known = migration_heads(migrations_dir)
    current = database.migration_revision(session)
    head_text = ", ".join(heads)
    if current is None:
        return Diagnosis(
            Health.FAIL,
            "migrations",
            f"the database has no migration revision (head is {head_text}); run `auditapp init`",
        )
    if current in heads:
        return Diagnosis(Health.OK, "migrations", f"at the head revision {current}")
    if current in known:
        return Diagnosis(
            Health.FAIL,
            "migrations",
            f"at {current}, behind the head {head_text}; run `auditapp init` (upgrades the "
            f"schema) after a backup",
        )
    return Diagnosis(
        Health.FAIL,
        "migrations",
        f"at {current}, a revision this code does not know (head {head_text}); is the code "
        f"older than the database?",
    )


def _check_evidence_folder(store: EvidenceStore, path: str) -> list[Diagnosis]:
    found = []
    try:
        pending = store.begin()
        try:
            pending.write(b"doctor")
        finally:
            store.abort(pending)
        found.append(Diagnosis(Health.OK, "evidence folder", f"writable: {path}"))
    except OSError as exc:
        found.append(Diagnosis(Health.FAIL, "evidence folder", f"cannot write to {path}: {exc}"))
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        found.append(Diagnosis(Health.FAIL, "disk space", f"cannot read free space: {exc}"))
        return found
    status = Health.WARN if free < LOW_DISK_BYTES else Health.OK
    detail = f"{free / _GIB:.1f} GiB free for evidence"
    if status is Health.WARN:
        detail += f" (under {LOW_DISK_BYTES // _GIB} GiB: uploads will soon fail)"
    found.append(Diagnosis(status, "disk space", detail))
    return found


def _check_lock(holder: Any, now: datetime) -> Diagnosis:
    if holder is None:
        return Diagnosis(
            Health.WARN,
            "scheduler lock",
            "no scheduler has ever run; start `auditapp scheduler` (its own process)",
        )
    if holder.lease_until > now:
        return Diagnosis(
            Health.OK,
            "scheduler lock",
            f"held by {holder.holder} (lease until {_when(holder.lease_until)})",
        )
    return Diagnosis(
        Health.WARN,
        "scheduler lock",
        f"not held since {_when(holder.lease_until)} (last holder {holder.holder}); is "
        f"`auditapp scheduler` running?",
    )


def _check_last_run(run: Any, now: datetime) -> Diagnosis:
    if run is None or run.finished_at is None:
        return Diagnosis(Health.WARN, "scheduled jobs", "no successful run recorded yet")
    age = now - run.finished_at
    detail = f"last successful run {_when(run.finished_at)} ({run.job_id})"
    if age > TICK_STALE_AFTER:
        return Diagnosis(
            Health.WARN, "scheduled jobs", f"{detail}, {age.days} days ago; jobs run daily"
        )
    return Diagnosis(Health.OK, "scheduled jobs", detail)


def _check_audit(session: Session, anchor: audit.Anchor | None, now: datetime) -> list[Diagnosis]:
    """The chain recomputed, and (with an anchor) checked against every checkpoint."""
    if anchor is None:
        return [_chain_diagnosis(audit.verify(session))]
    try:
        report = audit.check_instance(session, anchor)
    except OpsError as exc:  # an unreadable key file
        return [
            _chain_diagnosis(audit.verify(session)),
            Diagnosis(Health.FAIL, "audit anchor", str(exc)),
        ]
    return [_chain_diagnosis(report.chain), _anchor_diagnosis(report, anchor, now)]


def _chain_diagnosis(report: audit.ChainReport) -> Diagnosis:
    if report.ok:
        return Diagnosis(
            Health.OK, "audit chain", f"intact: {report.count} entries, head {report.head}"
        )
    return Diagnosis(
        Health.FAIL,
        "audit chain",
        f"broken at entry {report.broken_id}: {report.problem} ({report.count} entries "
        f"verified before it)",
    )


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} hours"


def _anchor_diagnosis(report: audit.AnchorReport, anchor: audit.Anchor, now: datetime) -> Diagnosis:
    """Key present, newest checkpoint's age, every checkpoint verified."""
    name = "audit anchor"
    if report.problems:
        shown = "; ".join(report.problems[:3])
        more = f"; and {len(report.problems) - 3} more" if len(report.problems) > 3 else ""
        return Diagnosis(
            Health.FAIL,
            name,
            f"{len(report.problems)} problem(s): {shown}{more} (`auditapp audit verify`)",
        )
    mode = anchor.key_file_mode()
    if mode is None:
        return Diagnosis(
            Health.WARN, name, f"no audit key ({anchor.key_file}); `auditapp init` creates one"
        )
    newest = report.newest
    if newest is None:
        return Diagnosis(
            Health.WARN,
            name,
            f"key {report.key_id} present; no checkpoint yet (the scheduler writes one daily; "
            f"`auditapp audit checkpoint` writes one now)",
        )
    age = now - newest.at
    detail = (
        f"key {report.key_id}; newest checkpoint {_age(age)} old ({newest.entries} entries); "
        f"{len(report.checked)} checkpoint(s) verified"
    )
    if mode & 0o077:
        return Diagnosis(
            Health.WARN,
            name,
            f"{detail}; the key file is readable by others (mode {mode:o}): "
            f"chmod 600 {anchor.key_file}",
        )
    if age > TICK_STALE_AFTER:
        return Diagnosis(
            Health.WARN, name, f"{detail}; one is written daily: is `auditapp scheduler` running?"
        )
    return Diagnosis(Health.OK, name, detail)


def _check_schema(session: Session, migrations_dir: str) -> Diagnosis:
    """The database's schema against what the migrations create at its revision: a
    planted trigger, view, function or extra table is a FAIL."""
    name = "schema"
    revision = database.migration_revision(session)
    if revision is None:
        return Diagnosis(Health.WARN, name, "not checked: the database has no revision")
    try:
        schema.check_revision(migrations_dir, revision)
        problems = _schema_problems(session, migrations_dir, revision)
    except OpsError as exc:
        return Diagnosis(Health.WARN, name, f"not checked: {exc}")
    if problems:
        shown = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        return Diagnosis(Health.FAIL, name, f"{len(problems)} difference(s): {shown}{more}")
    return Diagnosis(Health.OK, name, f"exactly what the migrations create ({revision})")


def _schema_problems(session: Session, migrations_dir: str, revision: str) -> list[str]:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        actual = schema.sqlite_schema(conn.connection.driver_connection)
        with tempfile.TemporaryDirectory(prefix="auditapp-doctor-") as tmp:
            reference = schema.sqlite_reference(migrations_dir, revision, Path(tmp))
        return schema.sqlite_problems(actual, reference, revision)
    current = session.scalar(text("SELECT current_schema()"))
    actual = schema.pg_describe(conn, current)
    return schema.pg_problems(
        actual, schema.pg_reference(session.get_bind(), migrations_dir, revision), revision
    )


def _check_evidence_files(session: Session, store: EvidenceStore) -> Diagnosis:
    report = evidence_service.verify(session, store)
    named = [f"missing: evidence {i} ({sha})" for i, sha in report.missing]
    named += [f"altered: evidence {i} ({sha})" for i, sha in report.altered]
    if named:
        shown = "; ".join(named[:5]) + (f"; and {len(named) - 5} more" if len(named) > 5 else "")
        return Diagnosis(
            Health.FAIL,
            "evidence files",
            f"{len(report.missing)} missing, {len(report.altered)} altered of "
            f"{report.checked}: {shown}",
        )
    if report.orphaned:
        return Diagnosis(
            Health.WARN,
            "evidence files",
            f"{report.checked} verified; {len(report.orphaned)} file(s) belong to no evidence "
            f"item (`auditapp evidence verify` lists them)",
        )
    return Diagnosis(Health.OK, "evidence files", f"{report.checked} files verified")


def doctor(
    session: Session,
    store: EvidenceStore,
    *,
    config: Mapping[str, Any],
    migrations_dir: str,
    lock_holder: Callable[[Session], Any],
    last_run: Callable[[Session], Any],
    anchor: audit.Anchor | None = None,
    full: bool = False,
    now: datetime | None = None,
) -> list[Diagnosis]:
    """Every health check, one Diagnosis each. `lock_holder` and `last_run` read the
    scheduler's state (passed in: services do not import the scheduler); `anchor` is the
    audit trail's, checked when given."""
    now = now or utcnow()
    found = check_config(config)
    engine = session.get_bind()
    try:
        session.execute(text("SELECT 1"))
        where = engine.url.render_as_string(hide_password=True)
        if engine.dialect.name == "postgresql":
            where += f" (schema {session.scalar(text('SELECT current_schema()'))})"
        found.append(Diagnosis(Health.OK, "database", f"reachable: {where}"))
        reachable = True
    except SQLAlchemyError as exc:
        session.rollback()
        first = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        found.append(Diagnosis(Health.FAIL, "database", f"unreachable: {first}"))
        reachable = False
    if reachable:
        found += _guarded(session, "migrations", lambda: _check_migrations(session, migrations_dir))
        found += _guarded(session, "schema", lambda: _check_schema(session, migrations_dir))
    found += _check_evidence_folder(store, str(config.get("EVIDENCE_PATH")))
    if not reachable:
        return found
    checks: list[tuple[str, Callable[[], Diagnosis | list[Diagnosis]]]] = [
        ("scheduler lock", lambda: _check_lock(lock_holder(session), now)),
        ("scheduled jobs", lambda: _check_last_run(last_run(session), now)),
        ("audit chain", lambda: _check_audit(session, anchor, now)),
    ]
    if full:
        checks.append(("evidence files", lambda: _check_evidence_files(session, store)))
    for name, run in checks:
        found += _guarded(session, name, run)
    return found


def _guarded(
    session: Session, name: str, run: Callable[[], Diagnosis | list[Diagnosis]]
) -> list[Diagnosis]:
    """Run one check; a database error (a missing table, say) is that check's FAIL."""
    try:
        result = run()
    except SQLAlchemyError as exc:
        session.rollback()
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [Diagnosis(Health.FAIL, name, f"database error: {first}")]
    session.rollback()  # read-only: end the transaction (and SQLite's lock) at once
    return result if isinstance(result, list) else [result]
