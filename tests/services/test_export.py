"""The auditor export: scope parsing, the workbook (sheets, headers, values, safety,
styling), the evidence bundle and its verification."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import select

from auditapp.errors import InvalidInput
from auditapp.models import Attestation, AuditEvent, Check, Evidence, Finding, Review, User
from auditapp.services import audit, catalog, checks, evidence, export
from auditapp.services.export import bundle
from tests.factories import make_evidence, make_user

TODAY = date(2026, 6, 15)
FY2025 = ("FY2025", date(2025, 4, 1), date(2026, 3, 31))
SHEETS = [
    "Summary",
    "Applicability",
    "Controls",
    "Checks",
    "Findings",
    "Evidence",
    "Training",
    "Training by department",
    "Audit log",
]
PAYLOADS = [
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "-2+3",
    "@SUM(1)",
    "\tleading tab",
    "\rleading CR",
    '＝HYPERLINK("http://x","y")',
    "＋1＋1",
    "－2＋3",
    "＠SUM(1)",
]


@dataclass
class World:
    """Ids of what build_world made."""

    owner_id: int
    admin_id: int
    checks: dict[str, int]  # period key of TEC-04 -> check id
    org01_fy2025: int
    finding_id: int
    evidence_check: int  # evidence linked to the M03 check
    evidence_control: int  # evidence linked to control TEC-04
    withdrawn: int


def build_world(app, session) -> World:
    """TEC-04 (monthly) and ORG-01 (annual) owned by a manager since April 2025, checks up
    to July 2026; M01 deficient (a finding), M02 not applicable and accepted, M03 effective
    with evidence and returned; evidence on the control; a withdrawn item."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    owner = make_user(session, roles=["manager"], name="管理 太郎", email="owner@example.jp")
    admin = make_user(session, roles=["admin"], name="審査 花子", email="boss@example.jp")
    for code in ("TEC-04", "ORG-01"):
        control = catalog.get(session, code)
        catalog.update_settings(
            session,
            "test",
            control,
            owner_email=owner.email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
        control.checks_from = date(2025, 4, 1)
    checks.materialize(session, TODAY, checks.CheckSettings(), since=date(2025, 4, 1))
    rows = session.scalars(select(Check).order_by(Check.id)).all()
    by_key = {c.period_key: c for c in rows if c.control.code == "TEC-04"}
    org01 = next(c for c in rows if c.control.code == "ORG-01" and c.period_key == "FY2025")
    m01, m02, m03 = by_key["FY2025-M01"], by_key["FY2025-M02"], by_key["FY2025-M03"]
    checks.attest(
        session,
        owner,
        m01,
        result="deficient",
        statement="ログの確認漏れがあった",
        finding={
            "description": "4月分のログ確認記録がない",
            "risk": "high",
            "remediation_plan": "確認手順を改める",
            "due_date": (TODAY + timedelta(days=30)).isoformat(),
        },
        today=TODAY,
    )
    checks.attest(
        session,
        owner,
        m02,
        result="not_applicable",
        statement="対象なし",
        finding=None,
        today=TODAY,
    )
    checks.review(session, admin, m02, decision="accepted", comment="確認しました")
    item = make_evidence(app, session, data=b"%PDF-1.4\nm03 log\n", link=f"check:{m03.id}")
    checks.attest(
        session, owner, m03, result="effective", statement="確認済み", finding=None, today=TODAY
    )
    checks.review(session, admin, m03, decision="returned", comment="証跡が不足")
    on_control = make_evidence(app, session, data=b"%PDF-1.4\npolicy\n", link="control:TEC-04")
    on_control.uploaded_at = datetime(2025, 5, 1, tzinfo=UTC)
    withdrawn = make_evidence(app, session, data=b"%PDF-1.4\nwrong\n", link=f"check:{m03.id}")
    evidence.withdraw(session, "test", withdrawn, "誤登録")
    finding = session.scalars(select(Finding)).one()
    session.commit()
    return World(
        owner_id=owner.id,
        admin_id=admin.id,
        checks={k: c.id for k, c in by_key.items()},
        org01_fy2025=org01.id,
        finding_id=finding.id,
        evidence_check=item.id,
        evidence_control=on_control.id,
        withdrawn=withdrawn.id,
    )


def request_for(scope=FY2025, categories=(), lang="ja") -> export.ExportRequest:
    label, start, end = scope
    return export.ExportRequest(start, end, list(categories), lang, "Asia/Tokyo", label)


def rows_of(ws) -> list[list]:
    """A sheet's data rows (header excluded) as values."""
    return [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]


def header(ws) -> list:
    return [c.value for c in next(ws.iter_rows(min_row=1, max_row=1))]


def summary_values(ws) -> dict:
    """The Summary sheet's label -> value lines."""
    return {r[0]: r[1] for r in ws.iter_rows(values_only=True) if r and r[0]}


@pytest.fixture
def world(app, session) -> World:
    return build_world(app, session)


@pytest.fixture
def store(app):
    return app.extensions["evidence_store"]


def _write(session, tmp_path, req=None, **kw):
    out = tmp_path / "report.xlsx"
    result = export.write_workbook(
        session, req or request_for(), out, generated_by="tester", now=_now(), **kw
    )
    return result, load_workbook(out)


def _now() -> datetime:
    return datetime(2026, 6, 15, 3, 0, tzinfo=UTC)


# Scope ---------------------------------------------------------------------------------


def test_parse_scope_fiscal_year_and_range():
    """FY2026 is April–March with an April start; a typed range may use Japanese dates."""
    assert export.parse_scope("FY2026", None, None, 4) == (date(2026, 4, 1), date(2027, 3, 31))
    assert export.parse_scope("2026", "", "", 1) == (date(2026, 1, 1), date(2026, 12, 31))
    assert export.parse_scope(None, "2026/04/01", "2026年6月30日", 4) == (
        date(2026, 4, 1),
        date(2026, 6, 30),
    )


@pytest.mark.parametrize(
    ("fy", "start", "end", "field", "words"),
    [
        (None, "2026-05-01", "2026-04-01", "from", "is after the end date 2026-04-01"),
        (None, None, None, "scope", "choose a fiscal year or a date range"),
        ("FY2026", "2026-04-01", None, "scope", "not both"),
        ("FY20x6", None, None, "scope", "is not a fiscal year"),
        (None, "2026-02-30", "2026-03-01", "from", "not a real date"),
        (None, "2026-04-01", None, "to", "is required"),
        (None, "2000-01-01", "2026-01-01", "to", "too long"),
    ],
)
def test_parse_scope_refuses_bad_input(fy, start, end, field, words):
    """Backwards, missing, mixed, malformed, impossible or overlong scopes name the field."""
    with pytest.raises(InvalidInput) as info:
        export.parse_scope(fy, start, end, 4)
    assert field in info.value.errors
    assert words in str(info.value.errors[field])


def test_make_request_lists_every_bad_field():
    """An unknown category and language are reported together with the scope problem."""
    with pytest.raises(InvalidInput) as info:
        export.make_request(
            fy=None,
            from_="2026-05-01",
            to="2026-04-01",
            categories=["technical", "nonsense"],
            lang="fr",
            start_month=4,
            timezone="Asia/Tokyo",
        )
    assert set(info.value.errors) == {"from", "category", "lang"}
    assert "unknown category 'nonsense'" in str(info.value.errors["category"])
    assert "technical" in str(info.value.errors["category"])


def test_make_request_normalizes():
    """Categories may be comma-separated and repeated; the label is the fiscal year."""
    req = export.make_request(
        fy="fy2025",
        from_=None,
        to=None,
        categories=["technical,human", "technical"],
        lang="EN",
        start_month=4,
        timezone="Asia/Tokyo",
    )
    assert (req.label, req.categories, req.lang) == ("FY2025", ["technical", "human"], "en")
    assert req.scope_label == "FY2025 (2025-04-01 – 2026-03-31)"


# The workbook ---------------------------------------------------------------------------


def test_sheets_headers_and_rows_ja(app, session, world, tmp_path):
    """Sheets in order with Japanese headers; rows of the scope only; withdrawn evidence
    and out-of-range checks left out."""
    result, wb = _write(session, tmp_path)
    assert wb.sheetnames == SHEETS
    assert header(wb["Checks"])[:5] == ["点検ID", "管理策", "期間", "期限", "状態"]
    checks_rows = rows_of(wb["Checks"])
    keys = [r[2] for r in checks_rows]
    # TEC-04 FY2025-M01..M12 and ORG-01 FY2025; FY2026 periods are out of range.
    assert sorted(keys) == sorted([f"FY2025-M{m:02d}" for m in range(1, 13)] + ["FY2025"])
    assert result.rows["Checks"] == 13 and result.rows["Findings"] == 1
    by_key = {r[2]: r for r in checks_rows}
    m01, m02, m03 = by_key["FY2025-M01"], by_key["FY2025-M02"], by_key["FY2025-M03"]
    assert m01[7] == "不備あり" and m01[8] == "ログの確認漏れがあった"
    assert m02[4] == "承認済み" and m02[12] == "確認しました" and m02[10].startswith("審査 花子")
    assert (
        m03[4] == "期限超過" and m03[9] == 1
    )  # returned, and past its due date and m03[12] == "証跡が不足"
    assert by_key["FY2025-M12"][4] == "期限超過"  # open past its due date on 2026-06-15
    evidence_ids = [r[0] for r in rows_of(wb["Evidence"])]
    assert sorted(evidence_ids) == sorted([world.evidence_check, world.evidence_control])
    assert world.withdrawn not in evidence_ids
    finding = rows_of(wb["Findings"])[0]
    assert finding[:4] == [world.finding_id, "TEC-04", "FY2025-M01", "4月分のログ確認記録がない"]
    assert finding[4] == "高" and finding[6] == "管理 太郎"


def test_dates_are_real_dates(session, world, tmp_path):
    """Dates and times are date cells with a date format, times shown in the export's zone
    (stored in UTC; Excel has no time zones)."""
    first = session.scalars(select(Attestation).order_by(Attestation.id)).first()
    expected = first.attested_at.astimezone(ZoneInfo("Asia/Tokyo")).replace(tzinfo=None)
    check_id = first.check_id
    session.rollback()
    _result, wb = _write(session, tmp_path)
    row = next(r for r in wb["Checks"].iter_rows(min_row=2) if r[0].value == check_id)
    due, attested = row[3], row[6]
    assert isinstance(due.value, datetime) and due.is_date and due.number_format == "yyyy-mm-dd"
    assert attested.is_date and abs(attested.value - expected) < timedelta(seconds=1)


def test_english_headers_and_values(session, world, tmp_path):
    """--lang en: English headers and status words."""
    _result, wb = _write(session, tmp_path, request_for(lang="en"))
    assert header(wb["Checks"]) == [
        "Check ID",
        "Control",
        "Period",
        "Due date",
        "Status",
        "Attester",
        "Attested at",
        "Result",
        "Statement",
        "Evidence count",
        "Reviewer",
        "Reviewed at",
        "Review comment",
    ]
    statuses = {r[4] for r in rows_of(wb["Checks"])}
    assert {"Overdue", "Accepted", "Awaiting review"} <= statuses
    assert header(wb["Evidence"])[-2:] == ["File check", "Path in the bundle"]


def test_styling_frozen_filter_print_titles_and_colours(session, world, tmp_path):
    """Each data sheet: bold filled header, frozen panes, filter over all rows, print
    titles, widths, and status colours as conditional formatting."""
    _result, wb = _write(session, tmp_path)
    for name in SHEETS[1:]:
        ws = wb[name]
        assert ws.freeze_panes == "A2", name
        assert ws.auto_filter.ref == f"A1:{get_column_letter(ws.max_column)}{ws.max_row}", name
        assert ws.print_title_rows == "$1:$1", name
        assert ws["A1"].font.bold and ws["A1"].fill.fgColor.rgb.endswith("3B5B7A"), name
        assert ws.column_dimensions["A"].width > 0
    ranges = [str(cf.sqref) for cf in wb["Checks"].conditional_formatting]
    assert "E2:E14" in ranges and "H2:H14" in ranges


def test_summary_facts(app, session, world, tmp_path):
    """The summary names the scope, who and when, versions, profile, the chain's count and
    head, rows per sheet, n/a training, and counts by category and result."""
    head = audit.head(session)
    count = session.query(AuditEvent).count()
    session.rollback()
    result, wb = _write(session, tmp_path, request_for(lang="en"))
    values = summary_values(wb["Summary"])
    assert values["Scope"] == "FY2025 (2025-04-01 – 2026-03-31)"
    assert values["Scope start"] == datetime(2025, 4, 1)
    assert values["Generated by"] == "tester"
    assert values["Generated at"] == datetime(2026, 6, 15, 12, 0)
    assert values["Application version"] == __import__("auditapp").__version__
    assert len(values["Catalog version"]) == 64
    assert values["Organization profile"] == "Standard"
    assert values["Audit-chain head hash (at generation)"] == head == result.audit_head
    assert values["Audit-chain entries (at generation)"] == count
    assert values["Rows: Checks"] == 13
    assert values["Training completion (overall)"] == "n/a"
    table = {r[0]: r[1:] for r in wb["Summary"].iter_rows(values_only=True) if r[0]}
    assert table["technical Technical safeguards"][:5] == (1, 1, 1, 9, 12)
    assert table["Total"][:5] == (1, 1, 1, 10, 13)


def test_category_filter(session, world, tmp_path):
    """Only the chosen categories' controls, checks and evidence are exported."""
    result, wb = _write(session, tmp_path, request_for(categories=["organizational"]))
    assert result.rows["Checks"] == 1 and result.rows["Findings"] == 0
    assert {r[0][:3] for r in rows_of(wb["Controls"])} == {"ORG"}
    assert result.rows["Evidence"] == 0


def test_control_evidence_needs_upload_by_the_end(session, world, tmp_path):
    """Evidence on a control counts only when uploaded by the end of the range."""
    session.get(Evidence, world.evidence_control).uploaded_at = datetime(2026, 5, 1, tzinfo=UTC)
    session.commit()
    result, wb = _write(session, tmp_path)
    assert [r[0] for r in rows_of(wb["Evidence"])] == [world.evidence_check]


def test_controls_and_applicability(session, world, tmp_path):
    """SoA lists every active control with its decision; Controls shows owner, the last
    period and result in scope, references and open findings."""
    control = catalog.get(session, "HUM-02")
    admin = session.get(User, world.admin_id)
    catalog.update_settings(
        session,
        admin,
        control,
        owner_email=None,
        frequency_override=None,
        applicable=False,
        justification="委託先がない",
    )
    session.commit()
    _result, wb = _write(session, tmp_path)
    soa = {r[0]: r for r in rows_of(wb["Applicability"])}
    assert len(soa) == 36
    assert soa["HUM-02"][3:6] == ["いいえ", "委託先がない", "審査 花子"]
    assert isinstance(soa["HUM-02"][6], datetime)
    assert soa["TEC-04"][3] == "はい" and soa["TEC-04"][4] is None
    controls = {r[0]: r for r in rows_of(wb["Controls"])}
    tec04 = controls["TEC-04"]
    assert tec04[5] == "毎月" and tec04[6] == "管理 太郎"
    assert tec04[7:10] == ["FY2025-M12", "期限超過", 1]
    assert "規程: " in tec04[4] and tec04[3]


def test_empty_scope_says_so(session, world, tmp_path):
    """A scope with nothing in it still gives a valid workbook that says so."""
    result, wb = _write(
        session, tmp_path, request_for(("FY2010", date(2010, 4, 1), date(2011, 3, 31)))
    )
    assert result.empty
    assert wb.sheetnames == SHEETS
    assert any(
        "対象範囲に該当するデータはありません" in str(r[0])
        for r in wb["Summary"].iter_rows(values_only=True)
    )
    for name in ("Checks", "Findings", "Evidence", "Audit log"):
        assert rows_of(wb[name]) == [] and header(wb[name])[0]


def test_empty_database(session, tmp_path):
    """Even with no catalog synced at all the export is a valid workbook."""
    result, wb = _write(session, tmp_path)
    assert result.empty and result.rows["Controls"] == 0
    assert summary_values(wb["Summary"])["管理策カタログのバージョン"] == "該当なし"
    assert wb.sheetnames == SHEETS


def test_audit_log_excerpt(session, world, tmp_path):
    """The trail's entries dated in the range with their chain hashes."""
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
    day = event.at.astimezone(ZoneInfo("Asia/Tokyo")).date()
    result, wb = _write(session, tmp_path, request_for(("", day, day)))
    log = rows_of(wb["Audit log"])
    assert (
        log and log[0][0] == event.id and log[0][7] == event.prev_hash and log[0][8] == event.hash
    )
    assert result.rows["Audit log"] == len(log)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_user_text_never_becomes_a_formula(app, session, world, tmp_path, payload):
    """SECURITY.md 16: each free-text field holding a formula-like payload is read back as
    a text cell equal to what was typed."""
    m02 = session.get(Check, world.checks["FY2025-M02"])
    attestation = m02.current_attestation
    attestation.statement = payload
    attestation.attester_name = payload
    review = session.scalars(select(Review).where(Review.attestation_id == attestation.id)).one()
    review.comment = payload
    review.reviewer_name = payload
    finding = session.get(Finding, world.finding_id)
    finding.description = payload
    finding.remediation_plan = payload
    finding.closing_note = payload
    finding.review_comment = payload
    item = session.get(Evidence, world.evidence_check)
    item.description = payload
    item.filename = payload
    item.uploaded_by_label = payload
    owner = session.get(User, world.owner_id)
    owner.name = payload
    control = catalog.get(session, "ORG-02")
    control.applicable = False
    control.na_justification = payload
    control.na_decided_by_id = world.owner_id
    session.commit()
    _result, wb = _write(session, tmp_path)

    def cells(sheet: str, key_col: int, key, cols: list[int]):
        row = next(r for r in wb[sheet].iter_rows(min_row=2) if r[key_col].value == key)
        return [row[c] for c in cols]

    found = (
        cells("Checks", 2, "FY2025-M02", [5, 8, 10, 12])
        + cells("Findings", 0, world.finding_id, [3, 5, 6, 10, 11])
        + cells("Evidence", 0, world.evidence_check, [2, 3, 7])
        + cells("Applicability", 0, "ORG-02", [4, 5])
        + cells("Controls", 0, "TEC-04", [6])
    )
    for cell in found:
        assert cell.value == payload, cell.coordinate
        assert cell.data_type == "s", cell.coordinate
    assert all(c.quotePrefix for c in found)


def test_missing_file_is_marked(app, session, world, store, tmp_path):
    """With the store given, a file missing on disk marks its row; the export completes."""
    item = session.get(Evidence, world.evidence_check)
    blob = Path(app.config["EVIDENCE_PATH"]) / item.sha256[:2] / item.sha256[2:4] / item.sha256
    blob.unlink()
    session.rollback()
    result, wb = _write(session, tmp_path, store=store)
    assert [(m.evidence_id, m.problem) for m in result.missing] == [
        (world.evidence_check, "missing")
    ]
    rows = {r[0]: r for r in rows_of(wb["Evidence"])}
    assert rows[world.evidence_check][10] == "欠落"
    assert rows[world.evidence_control][10] == "OK"


def test_no_transaction_open_while_writing(app, session, world, tmp_path, monkeypatch):
    """SECURITY.md 17: rows are written only between short reads, never inside one."""
    seen = []
    real_append = export.SheetWriter.append

    def append(self, values):
        seen.append(session().in_transaction())
        real_append(self, values)

    monkeypatch.setattr(export.SheetWriter, "append", append)
    _write(session, tmp_path)
    assert seen and not any(seen)


def test_progress_reaches_the_total(session, world, tmp_path):
    """The progress callback counts up to its total."""
    calls = []
    _write(session, tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] > 0
    assert [d for d, _t in calls] == sorted(d for d, _t in calls)


def test_pending_changes_are_refused(session, world, tmp_path):
    """An export ends each read with a rollback, so pending changes are refused up front."""
    session.get(Finding, world.finding_id).description = "unsaved"
    with pytest.raises(RuntimeError, match="commit or roll back"):
        _write(session, tmp_path)


# The bundle -----------------------------------------------------------------------------


def _bundle(session, store, tmp_path, req=None):
    zip_path = tmp_path / "bundle.zip"
    result = export.write_bundle(
        session,
        store,
        req or request_for(),
        zip_path,
        generated_by="tester",
        workbook_path=tmp_path / "report.xlsx",
        now=_now(),
    )
    return result, zip_path


def test_bundle_contents_and_hyperlinks(app, session, world, store, tmp_path):
    """The ZIP holds the workbook, each in-scope file under evidence/<control>/<period>/,
    manifest.csv, SHA256SUMS and README.txt; the Evidence sheet links each path."""
    # A second file with the same name on the same check gets " (2)".
    make_evidence(
        app, session, data=b"%PDF-1.4\nsecond\n", link=f"check:{world.checks['FY2025-M03']}"
    )
    session.commit()
    result, zip_path = _bundle(session, store, tmp_path)
    assert result.bundle_files == 3 and not result.missing
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        manifest = zf.read("manifest.csv").decode("utf-8-sig").splitlines()
        readme = zf.read("README.txt").decode("utf-8")
        assert zf.read("report.xlsx") == (tmp_path / "report.xlsx").read_bytes()
    assert {
        "evidence/TEC-04/FY2025-M03/factory.pdf",
        "evidence/TEC-04/FY2025-M03/factory (2).pdf",
        "evidence/TEC-04/general/factory.pdf",
        "report.xlsx",
        "manifest.csv",
        "SHA256SUMS",
        "README.txt",
    } == set(names)
    assert manifest[0] == "path,sha256,size" and len(manifest) == 5
    assert "sha256sum -c SHA256SUMS" in readme and "Get-FileHash" in readme
    assert result.audit_head in readme
    wb = load_workbook(tmp_path / "report.xlsx")
    rows = {r[0].value: r for r in wb["Evidence"].iter_rows(min_row=2)}
    cell = rows[world.evidence_check][11]
    assert cell.value == "evidence/TEC-04/FY2025-M03/factory.pdf"
    assert cell.hyperlink.target == quote(cell.value)
    assert rows[world.evidence_check][6].value == session.get(Evidence, world.evidence_check).sha256


def test_bundle_checks_with_sha256sum(session, world, store, tmp_path):
    """The standard tool accepts the bundle's SHA256SUMS after extraction."""
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum (coreutils) is not installed")
    _result, zip_path = _bundle(session, store, tmp_path)
    target = tmp_path / "x"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(target)
    done = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=target, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == 3


def test_verify_accepts_an_intact_bundle(session, world, store, tmp_path):
    """A fresh bundle verifies without problems."""
    _result, zip_path = _bundle(session, store, tmp_path)
    assert export.verify_bundle(zip_path) == []


def _rewrite(zip_path: Path, out: Path, change) -> Path:
    """Copy a ZIP entry by entry; change(name, data) returns new bytes or None to drop it."""
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
    return out


def test_verify_names_an_altered_file(session, world, store, tmp_path):
    """A changed evidence file is named, with the hash found and the one expected."""
    _result, zip_path = _bundle(session, store, tmp_path)
    path = "evidence/TEC-04/FY2025-M03/factory.pdf"
    bad = _rewrite(zip_path, tmp_path / "bad.zip", lambda n, d: d + b"x" if n == path else d)
    problems = export.verify_bundle(bad)
    assert len(problems) == 1 and problems[0].startswith(path) and "does not match" in problems[0]


def test_verify_names_a_manifest_that_disagrees_with_the_workbook(session, world, store, tmp_path):
    """A manifest rewritten to cover a swapped file no longer matches the Evidence sheet."""
    _result, zip_path = _bundle(session, store, tmp_path)
    path = "evidence/TEC-04/FY2025-M03/factory.pdf"
    new = b"%PDF-1.4\nforged\n"
    digest = hashlib.sha256(new).hexdigest()

    def change(name, data):
        if name == path:
            return new
        if name == "manifest.csv":
            lines = data.decode("utf-8-sig").splitlines()
            lines = [
                f"{path},{digest},{len(new)}" if ln.startswith(path + ",") else ln for ln in lines
            ]
            return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")
        if name == "SHA256SUMS":
            return b"".join(
                f"{digest}  {path}\n".encode() if ln.endswith(path.encode()) else ln + b"\n"
                for ln in data.splitlines()
            )
        return data

    problems = export.verify_bundle(_rewrite(zip_path, tmp_path / "forged.zip", change))
    assert len(problems) == 1
    assert (
        f"evidence {world.evidence_check}" in problems[0]
        and "differs from manifest.csv" in problems[0]
    )


def test_verify_names_missing_and_unlisted_entries(session, world, store, tmp_path):
    """A file dropped from the ZIP and a file slipped in are both named."""
    _result, zip_path = _bundle(session, store, tmp_path)
    path = "evidence/TEC-04/general/factory.pdf"

    def change(name, data):
        return None if name == path else data

    out = _rewrite(zip_path, tmp_path / "short.zip", change)
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("evidence/extra.exe", b"MZ")
    problems = export.verify_bundle(out)
    assert any(p.startswith(path) and "not in the bundle" in p for p in problems)
    assert any(p.startswith("evidence/extra.exe") and "not listed" in p for p in problems)


def test_verify_refuses_a_non_zip(tmp_path):
    """Something that is not a ZIP file is one clear problem."""
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert "not a readable ZIP file" in export.verify_bundle(path)[0]


def test_bundle_with_missing_and_altered_files(app, session, world, store, tmp_path):
    """A missing file is left out and marked; an altered one is included as found and
    marked; verify then names both."""
    missing = session.get(Evidence, world.evidence_check)
    altered = session.get(Evidence, world.evidence_control)
    root = Path(app.config["EVIDENCE_PATH"])
    (root / missing.sha256[:2] / missing.sha256[2:4] / missing.sha256).unlink()
    blob = root / altered.sha256[:2] / altered.sha256[2:4] / altered.sha256
    blob.chmod(0o600)
    blob.write_bytes(b"%PDF-1.4\ntampered\n")
    session.rollback()
    result, zip_path = _bundle(session, store, tmp_path)
    assert {(m.evidence_id, m.problem) for m in result.missing} == {
        (world.evidence_check, "missing"),
        (world.evidence_control, "altered"),
    }
    rows = {r[0]: r for r in rows_of(load_workbook(tmp_path / "report.xlsx")["Evidence"])}
    assert rows[world.evidence_check][10] == "欠落" and rows[world.evidence_check][11] is None
    assert rows[world.evidence_control][10] == "改変"
    problems = export.verify_bundle(zip_path)
    assert any(
        f"evidence {world.evidence_check}" in p and "not in the bundle" in p for p in problems
    )
    assert any(f"evidence {world.evidence_control}" in p and "differs" in p for p in problems)


def test_bundle_paths_are_safe_and_unique():
    """Path parts lose separators and device names; names collide case-insensitively."""
    assert bundle._path_part("../a/b\\c:d", "x") == "_a_b_c_d"
    assert bundle._path_part("CON.txt", "x") == "_CON.txt"
    assert bundle._path_part("...", "fallback") == "fallback"
    taken: set[str] = set()
    assert bundle._unique("evidence/A/P/r.pdf", taken) == "evidence/A/P/r.pdf"
    assert bundle._unique("evidence/A/P/R.PDF", taken) == "evidence/A/P/R (2).PDF"
    assert bundle._unique("evidence/A/P/r.pdf", taken) == "evidence/A/P/r (3).pdf"
    assert bundle._unique("evidence/A/P/README", taken) == "evidence/A/P/README"
    assert bundle._unique("evidence/A/P/readme", taken) == "evidence/A/P/readme (2)"


def replace_workbook(zip_path: Path, data: bytes, out: Path, *, compress: bool) -> Path:
    """A copy of a bundle with another report.xlsx, manifest.csv and SHA256SUMS updated for
    it (what someone re-saving the workbook and re-zipping the folder would make)."""
    digest = hashlib.sha256(data).hexdigest()

    def change(name: str, old: bytes) -> bytes:
        if name == "report.xlsx":
            return data
        if name == "manifest.csv":
            lines = [
                ln
                for ln in old.decode("utf-8-sig").splitlines()
                if not ln.startswith("report.xlsx,")
            ]
            lines.append(f"report.xlsx,{digest},{len(data)}")
            return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")
        if name == "SHA256SUMS":
            lines = [ln for ln in old.decode().splitlines() if not ln.endswith("  report.xlsx")]
            return ("\n".join([*lines, f"{digest}  report.xlsx"]) + "\n").encode()
        return old

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change(info.filename, src.read(info.filename)))
    return out


def test_verify_reads_a_rezipped_bundle(session, world, store, tmp_path):
    """A bundle re-zipped with compression and its workbook re-saved (the manifest updated
    for it) still verifies: the Evidence sheet is read inside the ZIP, whatever its layout."""
    _result, zip_path = _bundle(session, store, tmp_path)
    resaved = tmp_path / "resaved.xlsx"
    load_workbook(tmp_path / "report.xlsx").save(resaved)
    out = replace_workbook(zip_path, resaved.read_bytes(), tmp_path / "re.zip", compress=True)
    assert export.verify_bundle(out) == []
