"""Evidence over the web: streamed uploads, authorization per item, downloads, withdrawal."""

from __future__ import annotations

import io
import threading

import pytest

from auditapp.extensions import db
from auditapp.models import AuditEvent, Evidence
from auditapp.services import catalog
from tests.conftest import csrf_token, login
from tests.factories import make_user

PDF = b"%PDF-1.4\n" + "監査証跡".encode() * 200 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def owned(app, users):
    """The catalog synced; ORG-01 owned by the manager, ORG-02 by another manager."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        other = make_user(db.session, roles=["manager"], email="other@example.jp")
        for code, email in (("ORG-01", users["manager"]), ("ORG-02", other.email)):
            control = catalog.get(db.session, code)
            catalog.update_settings(
                db.session,
                "test",
                control,
                owner_email=email,
                frequency_override=None,
                applicable=True,
                justification=None,
            )
        db.session.commit()


def upload(client, data: bytes, name: str, link="control:ORG-01", json=True, **fields):
    """POST a file to the upload route with a CSRF token from this session."""
    form = {
        "csrf_token": csrf_token(client, "/"),
        "file": (io.BytesIO(data), name),
        "link": link,
        **fields,
    }
    headers = {"Accept": "application/json", "Accept-Language": "en"} if json else {}
    return client.post(
        "/evidence/upload", data=form, headers=headers, content_type="multipart/form-data"
    )


def _count(app) -> int:
    with app.app_context():
        return db.session.query(Evidence).count()


def _files(app) -> list:
    return sorted(
        p.name
        for p in (
            app.instance_path and __import__("pathlib").Path(app.config["EVIDENCE_PATH"])
        ).rglob("*")
        if p.is_file()
    )


def test_owner_uploads_and_downloads(app, as_role, owned):
    """The control's owner uploads a PDF; it is stored under its hash and downloads intact."""
    client = as_role("manager")
    response = upload(client, PDF, "確認記録 2026年4月.pdf", description="四半期確認")
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.json
    import hashlib

    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    download = client.get(f"/evidence/{body['id']}/download")
    assert download.status_code == 200 and download.data == PDF
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and "filename*=UTF-8''" in disposition
    assert "%E7%A2%BA" in disposition  # 確 percent-encoded (RFC 5987)
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert "evidence.upload" in actions and "evidence.download" in actions


def test_range_request(app, as_role, owned):
    """Downloads answer HTTP range requests with 206 and the exact bytes."""
    client = as_role("manager")
    evidence_id = upload(client, PDF, "a.pdf").json["id"]
    response = client.get(f"/evidence/{evidence_id}/download", headers={"Range": "bytes=5-14"})
    assert response.status_code == 206 and response.data == PDF[5:15]
    assert response.headers["Content-Range"] == f"bytes 5-14/{len(PDF)}"


def test_image_preview_inline(app, as_role, owned):
    """Images preview inline; other types have no preview."""
    client = as_role("manager")
    png = upload(client, PNG, "scan.png").json["id"]
    pdf = upload(client, PDF, "a.pdf").json["id"]
    response = client.get(f"/evidence/{png}/preview")
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert client.get(f"/evidence/{pdf}/preview").status_code == 404


@pytest.mark.parametrize(
    ("data", "name", "status", "message"),
    [
        (b"", "empty.pdf", 400, "empty"),
        (b"MZ\x90\x00" + b"\x00" * 100, "invoice.pdf", 400, "not a file type we accept"),
        (PDF, "scan.png", 400, "does not match"),
    ],
)
def test_bad_files_are_refused_and_nothing_stored(app, as_role, owned, data, name, status, message):
    """Empty files, an exe named .pdf and a PDF named .png are refused; nothing is stored."""
    response = upload(as_role("manager"), data, name)
    assert response.status_code == status
    assert message in response.json["errors"]["file"]
    assert _count(app) == 0
    assert _files(app) == []


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\evil\\report.pdf", "report.pdf"),
        ("a\x00b.pdf", "ab.pdf"),
        ("x\u202eod.pdf", "xod.pdf"),
    ],
)
def test_names_are_sanitized(app, as_role, owned, name, stored):
    """Path parts, NUL and bidi overrides are removed from the stored name."""
    evidence_id = upload(as_role("manager"), PDF, name).json["id"]
    with app.app_context():
        name = db.session.get(Evidence, evidence_id).filename
    # The test client's multipart encoding eats backslashes; what arrives is sanitized.
    assert name.endswith(stored) and not set(name) & {"/", "\\", ":", "\x00", "\u202e"}


def test_300_character_name(app, as_role, owned):
    """A 300-character name is stored as 200 characters keeping the extension."""
    evidence_id = upload(as_role("manager"), PDF, "長" * 300 + ".pdf").json["id"]
    with app.app_context():
        name = db.session.get(Evidence, evidence_id).filename
    assert len(name) == 200 and name.endswith(".pdf")


def test_oversized_body_is_413_with_the_limit(make_app, users):
    """A body over the limit is refused with 413 and the limit stated; nothing stored."""
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024)
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()
    client = app.test_client()
    login(client, users["admin"])
    response = upload(client, PDF * 100, "big.pdf", json=False)
    assert response.status_code == 413
    assert "0 MiB" in response.get_data(as_text=True) or "MiB" in response.get_data(as_text=True)
    assert _count(app) == 0


def test_too_many_parts_is_refused(app, as_role, owned):
    """The upload route accepts only a few form parts."""
    client = as_role("manager")
    form = {
        "csrf_token": csrf_token(client, "/"),
        "file": (io.BytesIO(PDF), "a.pdf"),
        "link": "control:ORG-01",
    }
    form.update({f"extra{i}": "x" for i in range(30)})
    response = client.post("/evidence/upload", data=form, content_type="multipart/form-data")
    assert response.status_code == 413
    assert _count(app) == 0


def test_attaching_to_someone_elses_control_is_404(app, as_role, owned):
    """A manager cannot attach evidence to a control they do not own (it looks absent)."""
    response = upload(as_role("manager"), PDF, "a.pdf", link="control:ORG-02")
    assert response.status_code == 404
    assert _count(app) == 0


def test_missing_link_and_bad_dates(app, as_role, owned):
    """A missing link, an impossible date and a past date each say what is wrong."""
    client = as_role("manager")
    assert "link" in upload(client, PDF, "a.pdf", link="").json["errors"]
    response = upload(client, PDF, "a.pdf", valid_until="2026-02-30")
    assert "not a real date" in response.json["errors"]["valid_until"]
    response = upload(client, PDF, "a.pdf", valid_until="2000-01-01")
    assert "past" in response.json["errors"]["valid_until"]


def test_someone_elses_evidence_is_404(app, as_role, owned, users):
    """An employee or another manager asking for an item they may not see gets 404."""
    evidence_id = upload(as_role("manager"), PDF, "a.pdf").json["id"]
    for role in ("employee",):
        client = as_role(role)
        assert client.get(f"/evidence/{evidence_id}").status_code == 404
        assert client.get(f"/evidence/{evidence_id}/download").status_code == 404
    other = app.test_client()
    login(other, "other@example.jp")
    assert other.get(f"/evidence/{evidence_id}/download").status_code == 404
    assert as_role("auditor").get(f"/evidence/{evidence_id}/download").status_code == 200
    assert as_role("admin").get(f"/evidence/{evidence_id}/download").status_code == 200


def test_withdrawn_item_only_for_admins(app, as_role, owned):
    """After withdrawal only admins can fetch the item; the reason is recorded."""
    evidence_id = upload(as_role("manager"), PDF, "a.pdf").json["id"]
    admin = as_role("admin")
    response = admin.post(
        f"/evidence/{evidence_id}/withdraw",
        data={"csrf_token": csrf_token(admin, "/"), "reason": ""},
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Evidence, evidence_id).status == "active"  # reason required
    admin.post(
        f"/evidence/{evidence_id}/withdraw",
        data={"csrf_token": csrf_token(admin, "/"), "reason": "誤って別部署の資料を添付"},
    )
    with app.app_context():
        item = db.session.get(Evidence, evidence_id)
        assert item.status == "withdrawn" and item.withdraw_reason == "誤って別部署の資料を添付"
    assert as_role("manager").get(f"/evidence/{evidence_id}/download").status_code == 404
    assert as_role("auditor").get(f"/evidence/{evidence_id}/download").status_code == 404
    assert admin.get(f"/evidence/{evidence_id}/download").status_code == 200


def test_new_version_supersedes(app, as_role, owned):
    """A new version keeps the links, counts up, and the old one stays in the history."""
    client = as_role("manager")
    first = upload(client, PDF, "v1.pdf").json["id"]
    second = upload(client, PDF + b"v2", "v2.pdf", link="", supersedes=str(first)).json["id"]
    with app.app_context():
        old, new = db.session.get(Evidence, first), db.session.get(Evidence, second)
        assert new.version == 2 and new.lineage_id == first and old.superseded_at is not None
        assert [lk.object_id for lk in new.links] == ["ORG-01"]
    page = client.get(f"/evidence/{second}").get_data(as_text=True)
    assert "v1.pdf" in page and "v2.pdf" in page
    again = upload(client, PDF, "v3.pdf", link="", supersedes=str(first))
    assert again.status_code == 400 and "supersedes" in again.json["errors"]


def test_library_lists_only_visible_items(app, as_role, owned):
    """The library shows a manager their own items and an auditor everything; search works."""
    upload(as_role("manager"), PDF, "manager-file.pdf")
    admin = as_role("admin")
    upload(admin, PDF + b"x", "admin-file.pdf", link="control:ORG-02")
    manager_page = as_role("manager").get("/evidence/").get_data(as_text=True)
    assert "manager-file.pdf" in manager_page and "admin-file.pdf" not in manager_page
    auditor_page = as_role("auditor").get("/evidence/?q=admin-file").get_data(as_text=True)
    assert "admin-file.pdf" in auditor_page and "manager-file.pdf" not in auditor_page
    assert as_role("auditor").get("/evidence/?from=2026-02-30").status_code == 400


def test_panel_on_the_control_page(app, as_role, owned):
    """The control page shows its evidence panel with an upload form for the owner only."""
    client = as_role("manager")
    upload(client, PDF, "panel.pdf")
    html = client.get("/catalog/controls/ORG-01").get_data(as_text=True)
    assert "panel.pdf" in html and 'name="link" value="control:ORG-01"' in html
    html = as_role("employee").get("/catalog/controls/ORG-01").get_data(as_text=True)
    assert "upload-form" not in html


def test_same_bytes_uploaded_at_the_same_moment(make_app, users):
    """Concurrent uploads of identical bytes both succeed and share one stored file."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()
    results: list[int] = []
    barrier = threading.Barrier(2)

    def one():
        client = app.test_client()
        login(client, users["admin"])
        token = csrf_token(client, "/")
        barrier.wait()
        response = client.post(
            "/evidence/upload",
            data={
                "csrf_token": token,
                "file": (io.BytesIO(PDF), "same.pdf"),
                "link": "control:ORG-01",
            },
            headers={"Accept": "application/json"},
            content_type="multipart/form-data",
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201, 201]
    assert len([f for f in _files(app) if len(f) == 64]) == 1
    assert _count(app) == 2
