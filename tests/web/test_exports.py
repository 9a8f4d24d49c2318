"""The auditor's Export page: access, the form, queued jobs run outside the web with
progress, downloads, bad input, one export at a time (waiting behind whom), expiry."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from auditapp import scheduler
from auditapp.extensions import db
from auditapp.models import AuditEvent, ExportJob
from auditapp.services import export
from auditapp.services.export import jobs
from tests.conftest import post
from tests.services.test_export import build_world


@pytest.fixture(autouse=True)
def _wired(app):
    """These tests need the blueprint and its access rules wired into the app."""
    if "exports" not in app.blueprints:
        pytest.skip("the exports blueprint is not registered (auditapp/web/__init__.py)")


@pytest.fixture
def world(app):
    with app.app_context():
        return build_world(app, db.session)


def _start(client, **form):
    data = {"scope_kind": "fy", "fy": "FY2025", "lang": "ja"} | form
    # English pages, so the assertions can quote the English messages.
    return post(
        client, "/exports/", data, token_from="/exports/", headers={"Accept-Language": "en"}
    )


def _request():
    from tests.services.test_export import request_for

    return request_for()


def _run_queue(app) -> list:
    """What the scheduler does every few seconds: run the queued exports."""
    with app.app_context():
        return export.run_queued(
            db.session,
            app.extensions["evidence_store"],
            export.exports_dir(app.instance_path),
            runner="test-runner",
            stale_after=timedelta(minutes=5),
        )


def _wait(app, client, job_path: str) -> dict:
    """Run the queue, then read the job's status as the page's script does."""
    _run_queue(app)
    return client.get(job_path + "/status").get_json()


@pytest.mark.parametrize("role", ["employee", "manager"])
def test_others_than_auditors_and_admins_are_refused(as_role, role):
    """Employees and managers get 403 on the export page and on starting an export."""
    client = as_role(role)
    assert client.get("/exports/").status_code == 403
    token_page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', token_page).group(1)
    assert client.post("/exports/", data={"csrf_token": token}).status_code == 403


def test_page_shows_the_form_without_inline_scripts(as_role, world):
    """The form offers fiscal years, categories and languages; scripts only from files."""
    page = as_role("auditor").get("/exports/", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="FY2025"' in html and 'name="category" value="technical"' in html
    assert 'name="lang" value="en"' in html and 'name="bundle"' in html
    assert "<script>" not in html.replace(" ", "")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_export_runs_in_background_and_downloads(app, as_role, world):
    """Starting an export queues it and shows its progress page (nothing runs in the web
    process); once the runner has run it the workbook downloads as an attachment; creating
    and downloading are both in the audit trail."""
    client = as_role("auditor")
    response = _start(client)
    assert response.status_code == 302
    job_path = response.location
    assert re.fullmatch(r"/exports/[A-Za-z0-9_-]{22}", job_path)
    html = client.get(job_path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "exports.js" in html and "export-progress" in html
    assert "Waiting for the export runner (the scheduler) to start it" in html
    queued = client.get(job_path + "/status").get_json()
    assert queued["state"] == "queued" and queued["download_url"] is None
    body = _wait(app, client, job_path)
    assert body["state"] == "done" and body["percent"] == 100
    html = client.get(job_path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "auditor-export-FY2025-ja.xlsx" in html and "Checks" in html
    download = client.get(body["download_url"])
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert "auditor-export-FY2025-ja.xlsx" in download.headers["Content-Disposition"]
    assert "no-store" in download.headers["Cache-Control"]
    wb = load_workbook(io.BytesIO(download.data))
    assert wb["Checks"].max_row == 14
    generated_by = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True)}["作成者"]
    assert "auditor@example.jp" in generated_by
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
        assert actions[-2:] == ["export.create", "export.download"]
        event = db.session.query(AuditEvent).filter_by(action="export.create").one()
        assert "auditor@example.jp" in event.actor_label
    listing = client.get("/exports/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert body["download_url"] in listing and "Ready" in listing


def test_bundle_through_the_page(app, as_role, world, tmp_path):
    """With the bundle ticked the download is a ZIP that verifies."""
    client = as_role("auditor")
    job_path = _start(client, bundle="1", lang="en").location
    body = _wait(app, client, job_path)
    download = client.get(body["download_url"])
    assert download.headers["Content-Type"] == "application/zip"
    path = tmp_path / "b.zip"
    path.write_bytes(download.data)
    assert export.verify_bundle(path) == []
    with zipfile.ZipFile(path) as zf:
        assert "report.xlsx" in zf.namelist()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"scope_kind": "range", "from": "2026-05-01", "to": "2026-04-01"},
            "is after the end date 2026-04-01",
        ),
        ({"category": "payroll"}, "unknown category"),
        ({"scope_kind": "fy", "fy": "FYxx"}, "is not a fiscal year"),
        ({"lang": "fr"}, "choose ja or en"),
    ],
)
def test_bad_input_is_shown_on_the_form(as_role, world, form, message):
    """Bad requests re-show the form with the problem (400) and start nothing."""
    client = as_role("auditor")
    response = _start(client, **form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html.replace("&#39;", "'")
    assert "No exports yet." in html or "まだありません" in html


def test_a_second_export_waits_behind_the_running_one(app, as_role, world):
    """While an export runs another request is queued, and its page says (as plain text)
    whose export it waits behind; it runs once that one is finished."""
    with app.app_context():
        from tests.factories import make_user

        other = make_user(db.session, roles=["auditor"], name="<b>監査</b> 一郎")
        job = export.enqueue(db.session, owner=other, request=_request(), bundle=False)
        db.session.commit()
        running_id = job.id
        jobs.claim(db.session, running_id, "elsewhere:1", workbook=None, bundle=None)
    client = as_role("auditor")
    response = _start(client)
    assert response.status_code == 302
    html = client.get(response.location, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Waiting behind the export started by &lt;b&gt;監査&lt;/b&gt; 一郎" in html
    assert "<b>監査</b>" not in html
    status = client.get(response.location + "/status").get_json()
    assert status["state"] == "queued" and "<b>監査</b> 一郎" in status["waiting"]
    assert _run_queue(app) == []  # the running one holds the slot
    with app.app_context():
        db.session.query(ExportJob).filter_by(id=running_id).update(
            {"state": "done", "running_slot": None}
        )
        db.session.commit()
    assert _wait(app, client, response.location)["state"] == "done"


def test_queueing_is_bounded_per_person(app, as_role, world):
    """A person may have three exports waiting; a fourth is refused with the reason (409)."""
    client = as_role("auditor")
    for _ in range(3):
        assert _start(client).status_code == 302
    response = _start(client)
    assert response.status_code == 409
    assert "already have 3 exports waiting or running" in response.get_data(as_text=True)


def test_someone_elses_export_is_not_found(app, as_role, users, world):
    """Another auditor cannot see, poll or download someone's export; an admin can."""
    client = as_role("auditor")
    job_path = _start(client).location
    body = _wait(app, client, job_path)
    with app.app_context():
        from tests.factories import make_user

        make_user(db.session, roles=["auditor"], email="other@example.jp")
        db.session.commit()
    from tests.conftest import login

    other = app.test_client()
    login(other, "other@example.jp")
    for path in (job_path, job_path + "/status", body["download_url"]):
        assert other.get(path).status_code == 404, path
    assert as_role("admin").get(job_path).status_code == 200
    assert as_role("auditor").get("/exports/not-a-job-id/status").status_code == 404


def test_files_expire(app, as_role, world):
    """The export page deletes nothing; the daily purge_exports job removes finished files
    older than EXPORT_KEEP_HOURS."""
    client = as_role("auditor")
    job_path = _start(client).location
    body = _wait(app, client, job_path)
    app.config["EXPORT_KEEP_HOURS"] = 0
    assert client.get("/exports/").status_code == 200
    assert client.get(body["download_url"]).status_code == 200
    with app.app_context():
        message = scheduler._purge_exports(app, None)
    assert message.startswith("1 expired exports removed")
    assert client.get(body["download_url"]).status_code == 404
    assert client.get(job_path).status_code == 404
    assert list(export.exports_dir(app.instance_path).glob("*.xlsx")) == []
