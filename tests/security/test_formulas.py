"""No user text becomes a formula in CSV output (OWASP CSV injection), full-width forms too."""

from __future__ import annotations

import pytest

from auditapp.services.csvfile import csv_safe


@pytest.mark.parametrize(
    "value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "＝1+1", "＋1", "－1", "＠A1"]
)
def test_formula_triggers_are_prefixed_with_a_quote(value):
    """ASCII and full-width formula triggers at the start of a cell are neutralized."""
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["佐藤 花子", "1+1", "a=b", "メモ＝1"])
def test_ordinary_text_is_left_alone(value):
    """Text that does not start with a trigger is written as it is."""
    assert csv_safe(value) == value


def test_the_workbook_uses_the_same_triggers():
    """One rule: the workbook's text cells and CSV files share FORMULA_PREFIXES."""
    from auditapp.services.csvfile import FORMULA_PREFIXES
    from auditapp.services.export import writer

    assert {p[0] for p in FORMULA_PREFIXES} == writer.TRIGGERS
    assert {"＝", "＋", "－", "＠"} <= writer.TRIGGERS


@pytest.mark.parametrize("trigger", ["=", "+", "-", "@", "＝", "＋", "－", "＠"])
def test_workbook_user_text_is_never_a_formula(app, session, tmp_path, trigger):
    """SECURITY.md 16: a finding and an evidence description starting with an ASCII or a
    full-width formula trigger read back (openpyxl) as text cells with the quote prefix,
    and no cell anywhere in the workbook is a formula."""
    from openpyxl import load_workbook

    from auditapp.models import Evidence, Finding
    from auditapp.services import export
    from tests.services.test_export import build_world, request_for

    world = build_world(app, session)
    payload = f'{trigger}HYPERLINK("http://evil.example","x")'
    session.get(Finding, world.finding_id).description = payload
    session.get(Evidence, world.evidence_check).description = payload
    session.commit()
    out = tmp_path / "report.xlsx"
    export.write_workbook(session, request_for(), out, generated_by="test")
    wb = load_workbook(out)
    finding = next(r for r in wb["Findings"].iter_rows(min_row=2) if r[0].value == world.finding_id)
    item = next(
        r for r in wb["Evidence"].iter_rows(min_row=2) if r[0].value == world.evidence_check
    )
    for cell in (finding[3], item[3]):
        assert cell.value == payload and cell.data_type == "s" and cell.quotePrefix
    formulas = [
        f"{ws.title}!{c.coordinate}"
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.data_type == "f"
    ]
    assert formulas == []
