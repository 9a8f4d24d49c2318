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
