"""`auditapp training courses | status | import`, as an operator uses them."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from sqlalchemy import select

from auditapp.extensions import db
from auditapp.models import AuditEvent, Completion
from auditapp.services import training
from tests.factories import make_course, make_department, make_user

HEADER = "employee_id,course_code,completed_on,score"
GOOD_ROWS = [
    "E001,SEC-1,2026-05-01,",
    "E002,QUIZ-1,2026/05/02,85",
    "E003,sec-1,2026年5月3日,",
]


@pytest.fixture
def setup(app):
    """SALES (営業部): 山田 (E001, hired 2024) and 佐藤 (E002, hired 2026-04-01); DEV (開発部):
    鈴木 (E003). Courses from 2026-04-01: SEC-1 for everyone, QUIZ-1 with a score (pass
    mark 70), PLEDGE (once) and the retired OLD-1."""
    with app.app_context():
        s = db.session
        sales = make_department(s, code="SALES", name="営業部")
        dev = make_department(s, code="DEV", name="開発部")
        make_user(
            s,
            employee_id="E001",
            name="山田 太郎",
            email="taro@example.jp",
            department=sales,
            hired_on="2024-04-01",
        )
        make_user(
            s,
            employee_id="E002",
            name="佐藤 花子",
            email="hanako@example.jp",
            department=sales,
            hired_on="2026-04-01",
        )
        make_user(
            s,
            employee_id="E003",
            name="鈴木 一郎",
            email="ichiro@example.jp",
            department=dev,
            hired_on="2024-04-01",
        )
        make_course(s, code="SEC-1", title_ja="情報セキュリティ基礎", title_en="Security basics")
        make_course(s, code="QUIZ-1", title_ja="理解度テスト", score_required=True, pass_mark="70")
        make_course(
            s,
            code="PLEDGE",
            title_ja="秘密保持誓約",
            kind="acknowledgement",
            ack_text="秘密を守ります。",
            recurrence_months=0,
        )
        old = make_course(s, code="OLD-1", title_ja="旧研修")
        training.set_active(s, "test", old, False)
        s.commit()


def _file(tmp_path, *lines: str, encoding="utf-8", bom=False, header=HEADER, name="lms.csv"):
    """A CSV file (CRLF line ends like Excel) with the header, then the given lines."""
    body = "".join(f"{line}\r\n" for line in ([header] if header is not None else []) + [*lines])
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode("utf-8") + body.encode(encoding))
    return path


def _import(runner, path, *extra: str, today: str = "2026-06-01"):
    return runner.invoke(args=["training", "import", str(path), "--today", today, *extra])


def _completions(app) -> list[tuple[str, str, date, int | None, bool, str]]:
    """(employee id, course, completed_on, score, passed, source) of every completion."""
    with app.app_context():
        return sorted(
            (c.user.employee_id, c.course.code, c.completed_on, c.score, c.passed, c.source)
            for c in db.session.scalars(select(Completion))
        )


def _import_events(app) -> list[dict]:
    with app.app_context():
        return [
            {"actor": e.actor_label, **json.loads(e.after_json)}
            for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "training.import")
            )
        ]


EXPECTED = [
    ("E001", "SEC-1", date(2026, 5, 1), None, True, "import"),
    ("E002", "QUIZ-1", date(2026, 5, 2), 85, True, "import"),
    ("E003", "SEC-1", date(2026, 5, 3), None, True, "import"),
]


# import: good files ----------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_import_utf8_with_or_without_bom(app, runner, setup, tmp_path, bom):
    """A UTF-8 file (with or without BOM) is imported, and the import is audited."""
    result = _import(runner, _file(tmp_path, *GOOD_ROWS, bom=bom))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "imported: 3 added, 0 already recorded"
    assert _completions(app) == EXPECTED
    (event,) = _import_events(app)
    assert event["actor"].startswith("cli:")
    assert (event["added"], event["already"], event["skipped_errors"]) == (3, 0, 0)


def test_import_cp932_with_encoding(app, runner, setup, tmp_path):
    """A Shift_JIS (CP932) file from Japanese Excel is imported with --encoding cp932."""
    path = _file(tmp_path, *GOOD_ROWS, encoding="cp932")
    result = _import(runner, path, "--encoding", "cp932")
    assert result.exit_code == 0, result.output
    assert _completions(app) == EXPECTED


def test_import_by_email_and_scores_below_pass_mark(app, runner, setup, tmp_path):
    """People may be named by email; a score below the pass mark is imported as not passed."""
    path = _file(
        tmp_path,
        "TARO@example.jp,QUIZ-1,2026-05-01,69",
        "hanako@example.jp,QUIZ-1,2026-05-01,70",
        header="email,course_code,completed_on,score",
    )
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert _completions(app) == [
        ("E001", "QUIZ-1", date(2026, 5, 1), 69, False, "import"),
        ("E002", "QUIZ-1", date(2026, 5, 1), 70, True, "import"),
    ]


def test_reimport_adds_nothing(app, runner, setup, tmp_path):
    """Importing the same file again adds nothing and says so."""
    path = _file(tmp_path, *GOOD_ROWS)
    assert _import(runner, path).exit_code == 0
    result = _import(runner, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "imported: 0 added, 3 already recorded"
    assert _completions(app) == EXPECTED


def test_import_counts_rows_recorded_elsewhere(app, runner, setup, tmp_path):
    """A completion already recorded on the web counts as already recorded."""
    assert _import(runner, _file(tmp_path, GOOD_ROWS[0], name="first.csv")).exit_code == 0
    result = _import(runner, _file(tmp_path, *GOOD_ROWS, name="all.csv"))
    assert result.stdout.strip() == "imported: 2 added, 1 already recorded"


# import: bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("E999,SEC-1,2026-05-01,", "line 3: employee_id: unknown person 'E999'"),
        ("E001,NOPE,2026-05-01,", "line 3: course_code: unknown course 'NOPE'"),
        ("E001,SEC-1,2026-06-02,", "line 3: completed_on: 2026-06-02 is in the future"),
        (
            "E002,SEC-1,2026-03-31,",
            "line 3: completed_on: 2026-03-31 is before the person was hired (2026-04-01)",
        ),
        ("E001,QUIZ-1,2026-05-01,101", "line 3: score: '101' is not a whole number from 0 to 100"),
        ("E001,QUIZ-1,2026-05-01,-1", "line 3: score: '-1' is not a whole number from 0 to 100"),
        ("E001,QUIZ-1,2026-05-01,abc", "line 3: score: 'abc' is not a whole number from 0 to 100"),
        ("E001,QUIZ-1,2026-05-01,", "line 3: score: is required for this course"),
        (
            "E001,SEC-1,2026-02-30,",
            "line 3: completed_on: '2026-02-30' is not a real date (day is out of range for month)",
        ),
        (",SEC-1,2026-05-01,", "line 3: employee_id: employee_id or email is required"),
        ("E001,SEC-1", "line 3: row: expected 4 columns, found 2"),
    ],
)
def test_bad_row_is_reported_and_nothing_is_written(app, runner, setup, tmp_path, row, message):
    """Each kind of bad row exits 1 with 'line N: column: problem' and imports nothing,
    not even the good rows."""
    result = _import(runner, _file(tmp_path, GOOD_ROWS[0], row))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message, "1 problem(s); nothing was imported"]
    assert _completions(app) == []
    assert _import_events(app) == []


def test_unknown_email_is_reported_on_the_email_column(app, runner, setup, tmp_path):
    """An unknown email is reported on the email column."""
    path = _file(
        tmp_path, "nobody@example.jp,SEC-1,2026-05-01", header="email,course_code,completed_on"
    )
    result = _import(runner, path)
    assert result.exit_code == 1
    assert "line 2: email: unknown person 'nobody@example.jp'" in result.stderr.splitlines()


def test_every_problem_of_a_row_is_reported(app, runner, setup, tmp_path):
    """A row with several problems reports each of them."""
    result = _import(runner, _file(tmp_path, "E999,NOPE,2026-07-01,abc"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 2: employee_id: unknown person 'E999'",
        "line 2: course_code: unknown course 'NOPE'",
        "line 2: completed_on: 2026-07-01 is in the future",
        "line 2: score: 'abc' is not a whole number from 0 to 100",
        "4 problem(s); nothing was imported",
    ]


def test_duplicate_rows_in_the_file(app, runner, setup, tmp_path):
    """The same person, course and day twice in a file (however written) is a duplicate."""
    path = _file(
        tmp_path,
        "E001,SEC-1,2026-05-01,",
        "E003,SEC-1,2026-05-01,",
        "E001,sec-1,2026/05/01,",
    )
    result = _import(runner, path)
    assert result.exit_code == 1
    assert "line 4: row: duplicate of line 2" in result.stderr.splitlines()
    assert _completions(app) == []


def test_cp932_file_without_encoding_hints_at_the_option(app, runner, setup, tmp_path):
    """A CP932 file read as UTF-8 is refused naming the first undecodable line and the
    --encoding cp932 option; nothing is written."""
    path = _file(tmp_path, GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[2], encoding="cp932")
    result = _import(runner, path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 4: file: the file is not valid UTF-8; if it was saved by Japanese Excel, "
        "use --encoding cp932",
        "1 problem(s); nothing was imported",
    ]
    assert _completions(app) == []


@pytest.mark.parametrize(
    ("header", "lines", "message"),
    [
        (None, [], "line 1: file: the file is empty (expected a header line)"),
        (HEADER, [], "line 2: file: no data rows after the header"),
        (HEADER, ["", ","], "line 2: file: no data rows after the header"),
        ("course_code,completed_on", [], "line 1: file: missing column(s): employee_id or email"),
        ("employee_id,completed_on", [], "line 1: file: missing column(s): course_code"),
        ("employee_id,name,course_code,completed_on", [], "line 1: file: unknown column(s): name"),
    ],
)
def test_unusable_file(app, runner, setup, tmp_path, header, lines, message):
    """An empty file, a header alone or a wrong header is refused with exit 1."""
    result = _import(runner, _file(tmp_path, *lines, header=header))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message, "1 problem(s); nothing was imported"]
    assert _completions(app) == []


def test_skip_invalid_imports_the_good_rows(app, runner, setup, tmp_path):
    """--skip-invalid imports the good rows, reports the bad ones and counts them."""
    path = _file(tmp_path, GOOD_ROWS[0], "E001,NOPE,2026-05-01,", GOOD_ROWS[1], GOOD_ROWS[0])
    result = _import(runner, path, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "line 3: course_code: unknown course 'NOPE'",
        "line 5: row: duplicate of line 2",
    ]
    assert (
        result.stdout.strip() == "imported: 2 added, 0 already recorded, 2 row problem(s) skipped"
    )
    assert _completions(app) == EXPECTED[:2]
    assert _import_events(app)[0]["skipped_errors"] == 2


def test_today_option_decides_what_is_in_the_future(app, runner, setup, tmp_path):
    """--today sets the day after which completion dates are refused."""
    path = _file(tmp_path, GOOD_ROWS[0])
    result = _import(runner, path, today="2026-04-30")
    assert result.exit_code == 1
    assert "line 2: completed_on: 2026-05-01 is in the future" in result.stderr.splitlines()
    bad = _import(runner, path, today="2026-02-30")
    assert bad.exit_code == 2


def test_missing_file(app, runner, setup, tmp_path):
    """A file that does not exist is a usage error."""
    result = runner.invoke(args=["training", "import", str(tmp_path / "none.csv")])
    assert result.exit_code == 2


# courses and status ------------------------------------------------------------------------


def test_courses_csv(runner, setup):
    """`training courses --format csv` lists active courses; --all adds retired ones."""
    result = runner.invoke(args=["training", "courses", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["code", "title", "kind", "recurrence_months", "active"],
        ["PLEDGE", "秘密保持誓約", "acknowledgement", "0", "yes"],
        ["QUIZ-1", "理解度テスト", "training", "12", "yes"],
        ["SEC-1", "情報セキュリティ基礎", "training", "12", "yes"],
    ]
    rows = list(
        csv.reader(
            io.StringIO(
                runner.invoke(args=["training", "courses", "--format", "csv", "--all"]).stdout
            )
        )
    )
    assert ["OLD-1", "旧研修", "training", "12", "no"] in rows and len(rows) == 5


def test_courses_table(runner, setup):
    """`training courses` prints an aligned table with a header."""
    result = runner.invoke(args=["training", "courses"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["code", "title", "kind", "recurrence_months", "active"]
    assert lines[1].startswith("PLEDGE") and "acknowledgement" in lines[1]
    assert len(lines) == 4


def test_status_csv_for_department_and_course(app, runner, setup, tmp_path):
    """`training status --department --course --format csv` lists each person's status."""
    assert _import(runner, _file(tmp_path, GOOD_ROWS[0])).exit_code == 0
    result = runner.invoke(
        args=[
            "training",
            "status",
            "--department",
            "SALES",
            "--course",
            "sec-1",
            "--format",
            "csv",
            "--today",
            "2026-06-01",
        ]
    )
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [
        ["person", "department", "course", "status", "valid_until"],
        ["山田 太郎", "営業部", "SEC-1", "complete", "2027-05-01"],
        ["佐藤 花子", "営業部", "SEC-1", "overdue", "2026-05-01"],
    ]


def test_status_as_of_another_day(app, runner, setup, tmp_path):
    """--today judges status as of that day (due soon a month before expiry)."""
    assert _import(runner, _file(tmp_path, GOOD_ROWS[0])).exit_code == 0
    args = ["training", "status", "--course", "SEC-1", "--format", "csv"]
    rows = list(
        csv.reader(io.StringIO(runner.invoke(args=[*args, "--today", "2027-04-15"]).stdout))
    )
    assert ["山田 太郎", "営業部", "SEC-1", "due_soon", "2027-05-01"] in rows
    assert len(rows) == 4  # header and the three people


def test_status_is_formula_safe(app, runner, setup):
    """A name that a spreadsheet would run as a formula is quoted in CSV output."""
    with app.app_context():
        make_user(db.session, name="=1+1", employee_id="E009", hired_on="2024-04-01")
        db.session.commit()
    result = runner.invoke(
        args=["training", "status", "--course", "SEC-1", "--format", "csv", "--today", "2026-06-01"]
    )
    assert ["'=1+1", "", "SEC-1", "overdue", "2026-05-01"] in list(
        csv.reader(io.StringIO(result.stdout))
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--department", "NOPE"], "error: --department: unknown department 'NOPE'"),
        (["--course", "NOPE"], "error: --course: No such course."),
        (["--today", "2026-13-01"], "error: --today: "),
    ],
)
def test_status_refuses_unknown_filters(runner, setup, args, message):
    """An unknown department or course, or an impossible day, is a usage error (exit 2)."""
    result = runner.invoke(args=["training", "status", *args])
    assert result.exit_code == 2
    assert result.stderr.startswith(message)
