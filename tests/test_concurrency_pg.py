"""Several processes against one PostgreSQL database: attest the same check, append to the
audit chain, upload the same bytes, run schedulers. Nothing is duplicated or forked."""

from __future__ import annotations

import io
import multiprocessing
from datetime import date

import pytest
from sqlalchemy import func, select

from auditapp.extensions import db
from auditapp.models import Attestation, Check, Evidence, JobRun
from auditapp.services import audit, catalog, checks
from tests.factories import make_user

pytestmark = pytest.mark.postgres
TODAY = date(2026, 11, 27)


def _app(config: dict):
    from auditapp import create_app

    return create_app(config)


def _attest(config: dict, check_id: int, owner_id: int, barrier, results):
    """Worker: attest one check (one wins, the other gets a conflict)."""
    from auditapp.errors import Conflict
    from auditapp.models import User

    app = _app(config)
    with app.app_context():
        user = db.session.get(User, owner_id)
        check = db.session.get(Check, check_id)
        db.session.rollback()
        barrier.wait(timeout=30)
        try:
            check = db.session.get(Check, check_id)
            checks.attest(
                db.session,
                user,
                check,
                result="not_applicable",
                statement="並行",
                finding=None,
                today=TODAY,
            )
            db.session.commit()
            results.put("ok")
        except Conflict:
            db.session.rollback()
            results.put("conflict")


def _append(config: dict, n: int, barrier, results):
    """Worker: append n audit events."""
    app = _app(config)
    with app.app_context():
        barrier.wait(timeout=30)
        for i in range(n):
            audit.record(
                db.session, actor="worker", action="test.append", object_type="test", object_id=i
            )
            db.session.commit()
    results.put("done")


def _upload(config: dict, barrier, results):
    """Worker: upload the same bytes through the web app."""
    import re

    from tests.factories import PASSWORD

    app = _app(config)
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post(
        "/login", data={"email": "admin@example.jp", "password": PASSWORD, "csrf_token": token}
    )
    html = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    barrier.wait(timeout=30)
    response = client.post(
        "/evidence/upload",
        data={
            "csrf_token": token,
            "link": "control:ORG-01",
            "file": (io.BytesIO(b"%PDF-1.4\nsame bytes\n"), "same.pdf"),
        },
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    results.put(response.status_code)


def _scheduler(config: dict, barrier, results):
    """Worker: a scheduler that ticks once if it gets the lock."""
    from auditapp import scheduler

    app = _app(config)
    runner = scheduler.Runner(app)
    barrier.wait(timeout=30)
    try:
        outcomes = runner.tick(TODAY)
        results.put("ran" if outcomes else "standby")
    finally:
        import time

        time.sleep(1)  # hold the lock while the other one tries
        runner.stop()


def _run(target, config, n, *args):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(config, *args, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    return sorted(str(results.get(timeout=5)) for _ in range(n))


@pytest.fixture
def config(make_app, tmp_path):
    """The test app's configuration, to build the same app in other processes."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        make_user(db.session, roles=["admin"], email="admin@example.jp")
        db.session.commit()
    keys = ("TESTING", "SECRET_KEY", "INSTANCE_PATH", "DATABASE_URL", "SQLALCHEMY_ENGINE_OPTIONS")
    return app, {k: app.config[k] for k in keys} | {"INSTANCE_PATH": app.instance_path}


def test_two_processes_attest_the_same_check(config):
    """One attestation wins; the other process is told someone else was first."""
    app, cfg = config
    with app.app_context():
        owner = make_user(db.session, roles=["manager"])
        control = catalog.get(db.session, "TEC-04")
        catalog.update_settings(
            db.session,
            "test",
            control,
            owner_email=owner.email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
        control.checks_from = date(2026, 10, 1)
        checks.materialize(db.session, TODAY, checks.CheckSettings())
        db.session.commit()
        check_id = db.session.scalar(select(Check.id).order_by(Check.id))
        owner_id = owner.id
    assert _run(_attest, cfg, 2, check_id, owner_id) == ["conflict", "ok"]
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Attestation))
    assert count == 1


def test_audit_appends_from_several_processes(config):
    """Four processes appending at once leave one intact chain."""
    app, cfg = config
    assert _run(_append, cfg, 4, 25) == ["done"] * 4
    with app.app_context():
        report = audit.verify(db.session)
    assert report.ok and report.count >= 100


def test_simultaneous_uploads_of_the_same_bytes(config):
    """Four uploads of identical bytes at once all succeed and share one stored file."""
    app, cfg = config
    assert _run(_upload, cfg, 4) == ["201"] * 4
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 4
    assert len(list(app.extensions["evidence_store"].iter_hashes())) == 1


def test_two_scheduler_processes(config):
    """Of two scheduler processes started together exactly one runs the jobs."""
    app, cfg = config
    from auditapp import scheduler

    assert _run(_scheduler, cfg, 2) == ["ran", "standby"]
    with app.app_context():
        runs = db.session.scalar(select(func.count()).select_from(JobRun))
    assert runs == len(scheduler.JOBS)
