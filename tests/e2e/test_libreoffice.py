"""A real spreadsheet client: LibreOffice opens an exported workbook, prints it to PDF, and
re-saves it without turning user text into formulas (and `export verify` still reads the
re-saved one). Skipped where soffice is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from auditapp.models import Check
from auditapp.services import export
from tests.services.test_export import PAYLOADS, build_world, replace_workbook, request_for

SOFFICE = shutil.which("soffice")
if SOFFICE is None and os.environ.get("AUDITAPP_REQUIRE_LIBREOFFICE") == "1":
    raise RuntimeError("AUDITAPP_REQUIRE_LIBREOFFICE=1 but soffice is missing")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")


def _convert(source: Path, kind: str, tmp_path: Path) -> Path:
    """soffice --headless --convert-to <kind>, with a profile of its own (no shared lock)."""
    outdir = tmp_path / kind
    profile = (tmp_path / "lo-profile").as_uri()
    done = subprocess.run(
        [
            SOFFICE,
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            kind,
            "--outdir",
            str(outdir),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    target = outdir / f"{source.stem}.{kind}"
    assert target.exists(), done.stdout + done.stderr
    return target


@pytest.fixture
def workbook(app, session, tmp_path) -> Path:
    """An exported workbook whose first attested check's statement is a formula payload."""
    world = build_world(app, session)
    check = session.get(Check, world.checks["FY2025-M02"])
    check.current_attestation.statement = PAYLOADS[0]
    session.commit()
    out = tmp_path / "report.xlsx"
    export.write_workbook(session, request_for(), out, generated_by="e2e")
    return out


def test_libreoffice_prints_the_workbook_to_pdf(workbook, tmp_path):
    """LibreOffice converts the exported workbook to a PDF of some substance."""
    pdf = _convert(workbook, "pdf", tmp_path)
    assert pdf.stat().st_size > 1024
    assert pdf.read_bytes().startswith(b"%PDF")


def test_libreoffice_keeps_user_text_as_text(workbook, tmp_path):
    """Re-saved by LibreOffice, the payload is still a text cell (it never became a formula)."""
    resaved = _convert(workbook, "xlsx", tmp_path)
    ws = load_workbook(resaved)["Checks"]
    cell = next(r[8] for r in ws.iter_rows(min_row=2) if r[2].value == "FY2025-M02")
    assert cell.value == PAYLOADS[0] and cell.data_type == "s"


def test_a_bundle_with_a_libreoffice_resaved_workbook_verifies(app, session, tmp_path):
    """LibreOffice re-saves the bundle's workbook its own way (shared strings); with the
    manifest updated for it, `export verify` still reads the Evidence sheet and agrees."""
    build_world(app, session)
    zip_path = tmp_path / "bundle.zip"
    export.write_bundle(
        session,
        app.extensions["evidence_store"],
        request_for(),
        zip_path,
        generated_by="e2e",
        workbook_path=tmp_path / "report.xlsx",
    )
    resaved = _convert(tmp_path / "report.xlsx", "xlsx", tmp_path)
    with zipfile.ZipFile(resaved) as zf:
        assert "xl/sharedStrings.xml" in zf.namelist()
    out = replace_workbook(zip_path, resaved.read_bytes(), tmp_path / "re.zip", compress=False)
    assert export.verify_bundle(out) == []
