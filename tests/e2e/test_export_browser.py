"""End to end in Chromium: an export is queued from the page, says what it waits for,
and its progress bar turns into a download link once the runner has run it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from auditapp.extensions import db
from auditapp.services import export
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_queued_export_shows_progress_then_download(live_app, make_app, page):
    """The job page polls the job's row: waiting text while queued, then the download."""
    page.goto(f"{live_app}/login")
    page.fill("#email", "admin@example.jp")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_app}/")
    page.goto(f"{live_app}/exports/")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("#export-progress")
    waiting = page.locator(".export-waiting")
    assert "Waiting for the export runner" in waiting.inner_text()
    assert page.locator(".export-download").is_hidden()
    runner_app = make_app()  # another process's view of the same database: the scheduler
    with runner_app.app_context():
        ran = export.run_queued(
            db.session,
            runner_app.extensions["evidence_store"],
            export.exports_dir(runner_app.instance_path),
            runner="browser-test",
            stale_after=timedelta(minutes=5),
        )
    assert [outcome for _, outcome in ran] == ["done"]
    page.locator(".export-download").wait_for(state="visible", timeout=20_000)
    assert page.locator(".export-download").inner_text().startswith("Download auditor-export-")
    assert waiting.is_hidden()
