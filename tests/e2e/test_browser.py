"""End to end in Chromium: sign in, switch language, create a user, sign out."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_admin_journey(live_app, page, tmp_path):
    """An admin signs in, switches to Japanese and back, creates a user and signs out."""
    page.goto(f"{live_app}/login")
    page.fill("#email", "admin@example.jp")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_app}/")
    assert "Welcome" in page.inner_text("h1")

    page.click("button[name=lang][value=ja]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "ようこそ" in page.inner_text("h1")
    page.screenshot(path=str(tmp_path / "home-ja.png"), full_page=True)
    page.click("button[name=lang][value=en]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"

    page.goto(f"{live_app}/admin/users/new")
    page.fill("#employee_id", "E9001")
    page.fill("#name", "新人 次郎")
    page.fill("#email", "ADMIN@example.jp")  # taken (emails are case-insensitive)
    page.select_option("#department", "SALES")
    page.check("input[name=roles][value=manager]")
    page.click("form.form button[type=submit]")
    # The form keeps what was typed and says what was wrong.
    assert page.input_value("#name") == "新人 次郎"
    assert "already used" in page.inner_text("#err-email")
    page.fill("#email", "jiro@example.jp")
    page.click("form.form button[type=submit]")
    one_time = page.inner_text("#one-time-password")
    assert len(one_time) >= 12

    page.goto(f"{live_app}/admin/users?q=jiro")
    assert "新人 次郎" in page.inner_text("table")
    page.screenshot(path=str(tmp_path / "users.png"), full_page=True)
    assert (tmp_path / "users.png").stat().st_size > 5000

    page.click("#logout")
    page.wait_for_url(f"{live_app}/login")
    page.goto(f"{live_app}/admin/users")
    assert page.url.startswith(f"{live_app}/login")


def test_evidence_upload_through_the_panel(live_app, page, tmp_path):
    """An admin uploads evidence on a control page (script-driven with progress) and sees it."""
    pdf = tmp_path / "確認記録.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"0" * 200_000)
    page.goto(f"{live_app}/login")
    page.fill("#email", "admin@example.jp")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_app}/catalog/controls/ORG-01")
    page.set_input_files("input[type=file]", str(pdf))
    page.fill("input[name=description]", "四半期の確認記録")
    with page.expect_navigation():
        page.click("form.upload-form button[type=submit]")
    panel = page.inner_text(".evidence-panel")
    assert "確認記録.pdf" in panel and "四半期の確認記録" in panel
    page.screenshot(path=str(tmp_path / "control-evidence.png"), full_page=True)
    # A refused file shows the reason next to the form without leaving the page.
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"%PDF-1.4\nnot a png")
    page.set_input_files("input[type=file]", str(bad))
    page.click("form.upload-form button[type=submit]")
    page.wait_for_selector(".upload-status.field-error")
    assert "png" in page.inner_text(".upload-status")
