"""The HR CSV import service: counts, per-line errors, all-or-nothing writes, re-imports."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from auditapp.extensions import db
from auditapp.models import AuditEvent, User, UserRole
from auditapp.services import audit
from auditapp.services.user_import import BATCH_ROWS, ImportResult, import_users
from tests.factories import make_department, make_user

HEADER = "employee_id,name,email,department,roles,hired_on"
GOOD_ROWS = [
    "E001,山田 太郎,Taro.Yamada@Example.jp,SALES,employee,2026-04-01",
    "E002,佐藤 花子,hanako.sato@example.jp,開発部,manager;employee,2026/04/01",
    "E003,鈴木 一郎,ichiro.suzuki@example.jp,,auditor,2026年4月1日",
]


def csv_bytes(*rows: str, header: str = HEADER, encoding: str = "utf-8", bom: bool = False):
    """A CSV file as bytes: the header line, then the given rows, CRLF line ends like Excel."""
    text = "\r\n".join([header, *rows]) + "\r\n"
    return ("\ufeff" if bom else "").encode("utf-8") + text.encode(encoding)


def run(session, data: bytes, **options) -> ImportResult:
    """Import a CSV byte string as the test actor."""
    return import_users(session, "test", io.BytesIO(data), **options)


def messages(result: ImportResult) -> list[str]:
    """The errors as a person reads them: 'line N: column: problem'."""
    return [str(e) for e in result.errors]


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def actions(session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


@pytest.fixture
def org(session):
    """Two departments the files refer to by code (SALES) or Japanese name (開発部)."""
    make_department(session, code="SALES", name="営業部")
    make_department(session, code="DEV", name="開発部")
    session.commit()
    return session


@pytest.fixture
def flushes(org):
    """Counts the flushes of the session that actually had something to write."""
    count = []
    target = org()  # the real Session behind the scoped session
    listener = lambda *_: count.append(1)  # noqa: E731
    sa.event.listen(target, "after_flush", listener)
    yield count
    sa.event.remove(target, "after_flush", listener)


def assert_nothing_written(session, result: ImportResult, users_before: int, events_before):
    """The failed import left no trace: no user, no audit event, nothing pending."""
    assert result.written is False
    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert not session.new and not session.dirty
    assert user_count(session) == users_before
    assert actions(session) == events_before


# good files ------------------------------------------------------------------


def test_good_file_creates_every_person_with_their_details(org):
    """A valid UTF-8 file creates each person with department, roles and date."""
    result = run(org, csv_bytes(*GOOD_ROWS))
    org.commit()

    assert result.errors == []
    assert (result.created, result.updated, result.unchanged, result.written) == (3, 0, 0, True)
    taro = org.scalar(select(User).where(User.employee_id == "E001"))
    assert taro.name == "山田 太郎"
    assert taro.email == "taro.yamada@example.jp"
    assert taro.department.code == "SALES"
    assert {r.value for r in taro.roles} == {"employee"}
    assert taro.hired_on == date(2026, 4, 1)
    assert taro.active is True
    assert taro.must_change_password is True
    assert taro.password_hash is None  # no usable password until a reset gives one
    hanako = org.scalar(select(User).where(User.employee_id == "E002"))
    assert hanako.department.code == "DEV"
    assert {r.value for r in hanako.roles} == {"manager", "employee"}


def test_good_file_is_audited_per_person_and_as_a_whole(org):
    """Each created person gets user.create and the import one user.import with counts."""
    run(org, csv_bytes(*GOOD_ROWS))
    org.commit()

    assert actions(org)[-4:] == ["user.create"] * 3 + ["user.import"]
    summary = org.scalar(select(AuditEvent).where(AuditEvent.action == "user.import"))
    assert json.loads(summary.after_json) == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "skipped_errors": 0,
    }
    assert summary.actor_label == "test"


def test_utf8_bom_is_accepted(org):
    """A UTF-8 file with a byte-order mark (Excel 'CSV UTF-8') reads its header correctly."""
    result = run(org, csv_bytes(*GOOD_ROWS, bom=True))

    assert result.errors == []
    assert result.created == 3


def test_cp932_file_with_cp932_encoding(org):
    """A Shift_JIS (CP932) file from Japanese Excel imports when told its encoding."""
    data = csv_bytes(*GOOD_ROWS, encoding="cp932")

    result = run(org, data, encoding="cp932")
    org.commit()

    assert result.errors == []
    assert result.created == 3
    names = set(org.scalars(select(User.name)))
    assert {"山田 太郎", "佐藤 花子", "鈴木 一郎"} <= names


@pytest.mark.parametrize(
    "typed", ["2026-04-01", "2026/04/01", "2026/4/1", "2026年4月1日", "２０２６年４月１日"]
)
def test_date_formats_accepted(org, typed):
    """hired_on accepts ISO, slashes and the Japanese 年月日 form (full-width digits too)."""
    result = run(org, csv_bytes(f"E001,山田 太郎,taro@example.jp,,employee,{typed}"))
    org.commit()

    assert result.errors == []
    assert org.scalar(select(User.hired_on).where(User.employee_id == "E001")) == date(2026, 4, 1)


def test_blank_lines_are_ignored_but_line_numbers_stay_physical(org):
    """Blank lines (Excel adds them) are skipped; errors still name the file's real line."""
    data = csv_bytes("", GOOD_ROWS[0], ",,,,,", "E002,short")

    result = run(org, data)

    assert messages(result) == ["line 5: row: expected 6 columns, found 2"]


# file-level problems -----------------------------------------------------------


def test_cp932_read_as_utf8_hints_at_the_encoding(org, flushes):
    """A CP932 file read as UTF-8 fails as a whole with the --encoding cp932 hint."""
    users_before, events_before = user_count(org), actions(org)

    result = run(org, csv_bytes(*GOOD_ROWS, encoding="cp932"))

    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.column == "file"
    assert "--encoding cp932" in error.problem
    assert str(error).startswith(f"line {error.line}: file: the file is not valid UTF-8")
    assert flushes == []
    assert_nothing_written(org, result, users_before, events_before)


@pytest.mark.parametrize("good_rows_before", [1, 1000])
def test_undecodable_bytes_reported_on_their_own_line(org, good_rows_before):
    """The decode error names the line that holds the bytes that are not UTF-8."""
    rows = [f"E{i:04d},Name {i},u{i}@example.jp,,employee," for i in range(good_rows_before)]
    data = csv_bytes(*rows) + "E9999,佐藤 花子,sato@example.jp,,employee,\r\n".encode("cp932")
    bad_line = good_rows_before + 2

    result = run(org, data)

    assert [(e.line, e.column) for e in result.errors] == [(bad_line, "file")]


def test_cp932_bytes_in_header_name_line_one(org):
    """A header that is not UTF-8 is reported on line 1."""
    data = "社員番号,氏名\r\n".encode("cp932")

    result = run(org, data)

    assert [(e.line, e.column) for e in result.errors] == [(1, "file")]
    assert "--encoding cp932" in result.errors[0].problem


def test_utf8_file_read_as_cp932_hints_at_utf8(org):
    """A UTF-8 file wrongly read as CP932 fails with the --encoding utf-8 hint."""
    result = run(org, csv_bytes(*GOOD_ROWS), encoding="cp932")

    assert [e.column for e in result.errors] == ["file"]
    assert "use --encoding utf-8" in result.errors[0].problem
    assert result.written is False
    assert user_count(org) == 0


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "line 1: file: the file is empty (expected a header line)"),
        (b"\r\n\r\n", "line 1: file: the file is empty (expected a header line)"),
        (csv_bytes(), "line 2: file: no data rows after the header"),
        (csv_bytes(header=HEADER.replace(",email", "")), "line 1: file: missing column(s): email"),
        (
            csv_bytes(header="employee_id,name"),
            "line 1: file: missing column(s): email, roles",
        ),
        (csv_bytes(header=HEADER + ",phone"), "line 1: file: unknown column(s): phone"),
        (
            csv_bytes(header=HEADER + ",Email"),
            "line 1: file: a column name appears twice in the header",
        ),
    ],
    ids=["empty", "blank-lines", "header-only", "no-email", "two-missing", "unknown", "twice"],
)
def test_file_level_problem(org, flushes, data, expected):
    """A file that cannot be read as a whole gives one 'line N: file: ...' error."""
    users_before, events_before = user_count(org), actions(org)

    result = run(org, data)

    assert messages(result) == [expected]
    assert flushes == []
    assert_nothing_written(org, result, users_before, events_before)


def test_header_is_case_and_space_insensitive(org):
    """Header names are matched ignoring case and surrounding spaces."""
    header = " Employee_ID , NAME,Email,Department,Roles,Hired_On"

    result = run(org, csv_bytes(GOOD_ROWS[0], header=header))

    assert result.errors == []
    assert result.created == 1


def test_wrong_column_count(org, flushes):
    """A row with too few or too many cells is reported with the counts."""
    data = csv_bytes(
        GOOD_ROWS[0], "E002,佐藤 花子,hanako@example.jp,,employee", GOOD_ROWS[2] + ",x"
    )

    result = run(org, data)

    assert messages(result) == [
        "line 3: row: expected 6 columns, found 5",
        "line 4: row: expected 6 columns, found 7",
    ]
    assert flushes == []
    assert_nothing_written(org, result, 0, actions(org))


# row-level problems -------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            "E002,佐藤 花子,hanako@example.jp,,boss,",
            "line 3: roles: unknown role 'boss' (known: admin, auditor, employee, manager)",
        ),
        ("E002,佐藤 花子,hanako@example.jp,,,", "line 3: roles: at least one role is required"),
        (
            "E002,佐藤 花子,hanako@example.jp,NOPE,employee,",
            "line 3: department: unknown department 'NOPE'",
        ),
        (
            "E002,佐藤 花子,hanako.example.jp,,employee,",
            "line 3: email: 'hanako.example.jp' is not a valid email address",
        ),
        (
            f"E002,{'名' * 121},hanako@example.jp,,employee,",
            "line 3: name: is too long (121 characters, at most 120)",
        ),
        (
            f"{'E' * 41},佐藤 花子,hanako@example.jp,,employee,",
            "line 3: employee_id: is too long (41 characters, at most 40)",
        ),
        (
            f"E002,佐藤 花子,{'h' * 244}@example.jp,,employee,",
            "line 3: email: is too long (255 characters, at most 254)",
        ),
        (",佐藤 花子,hanako@example.jp,,employee,", "line 3: employee_id: is required"),
        (
            "E002,佐藤 花子,hanako@example.jp,,employee,2026-02-30",
            "line 3: hired_on: '2026-02-30' is not a real date (day is out of range for month)",
        ),
        (
            "E002,佐藤 花子,hanako@example.jp,,employee,April 1",
            "line 3: hired_on: 'April 1' is not a date "
            "(use YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日)",
        ),
    ],
    ids=[
        "unknown-role",
        "no-role",
        "unknown-department",
        "malformed-email",
        "long-name",
        "long-employee-id",
        "long-email",
        "no-employee-id",
        "impossible-date",
        "not-a-date",
    ],
)
def test_bad_row_is_reported_and_nothing_written(org, flushes, row, expected):
    """One bad row among good ones: its 'line N: column: problem', and no writes at all."""
    users_before, events_before = user_count(org), actions(org)

    result = run(org, csv_bytes(GOOD_ROWS[0], row, GOOD_ROWS[2]))

    assert messages(result) == [expected]
    assert flushes == []
    assert_nothing_written(org, result, users_before, events_before)


def test_every_problem_of_every_row_is_reported(org):
    """Validation does not stop at the first problem: all rows, all columns."""
    data = csv_bytes(
        f"E001,{'名' * 121},not-an-email,,employee,",
        GOOD_ROWS[1],
        "E003,鈴木 一郎,ichiro@example.jp,NOPE,boss,2026-13-01",
    )

    result = run(org, data)

    assert [(e.line, e.column) for e in result.errors] == [
        (2, "name"),
        (2, "email"),
        (4, "roles"),
        (4, "hired_on"),
        (4, "department"),
    ]
    assert result.written is False


def test_duplicate_email_within_file_names_both_lines(org, flushes):
    """Two rows with the same email (in any case) are refused, naming both lines."""
    data = csv_bytes(GOOD_ROWS[0], GOOD_ROWS[1], "E009,山田 次郎,TARO.YAMADA@example.jp,,employee,")

    result = run(org, data)

    assert messages(result) == ["line 4: email: taro.yamada@example.jp also on line 2"]
    assert flushes == []
    assert_nothing_written(org, result, 0, actions(org))


def test_duplicate_employee_id_within_file_names_both_lines(org):
    """Two rows for the same employee id are refused, naming both lines."""
    data = csv_bytes(GOOD_ROWS[0], "E001,山田 太郎,other@example.jp,,employee,")

    result = run(org, data)

    assert messages(result) == ["line 3: employee_id: E001 also on line 2"]
    assert result.written is False


def test_email_already_used_by_another_employee(org, flushes):
    """An email already held by a different employee in the database is refused."""
    make_user(org, employee_id="X001", email="taro.yamada@example.jp")
    org.commit()
    flushes.clear()
    users_before, events_before = user_count(org), actions(org)

    result = run(org, csv_bytes(*GOOD_ROWS))

    assert messages(result) == ["line 2: email: taro.yamada@example.jp is already used by X001"]
    assert flushes == []
    assert_nothing_written(org, result, users_before, events_before)


# --skip-invalid -----------------------------------------------------------------


def test_skip_invalid_imports_good_rows_and_reports_the_others(org):
    """With skip_invalid the good rows are written and each bad one is still reported."""
    data = csv_bytes(
        GOOD_ROWS[0], "E002,short", GOOD_ROWS[2], "E004,山田 次郎,taro.yamada@example.jp,,employee,"
    )

    result = run(org, data, skip_invalid=True)
    org.commit()

    assert messages(result) == [
        "line 3: row: expected 6 columns, found 2",
        "line 5: email: taro.yamada@example.jp also on line 2",
    ]
    assert (result.created, result.written) == (2, True)
    assert set(org.scalars(select(User.employee_id))) == {"E001", "E003"}
    summary = org.scalar(select(AuditEvent).where(AuditEvent.action == "user.import"))
    assert json.loads(summary.after_json)["skipped_errors"] == 2


def test_skip_invalid_with_validation_errors(org):
    """skip_invalid also skips rows failing field validation (role, date)."""
    data = csv_bytes(GOOD_ROWS[0], "E002,佐藤 花子,hanako@example.jp,,boss,", GOOD_ROWS[2])

    result = run(org, data, skip_invalid=True)

    assert [(e.line, e.column) for e in result.errors] == [(3, "roles")]
    assert result.created == 2


def test_skip_invalid_does_not_skip_file_level_problems(org):
    """A file that cannot be read is not imported even with skip_invalid."""
    result = run(org, csv_bytes(*GOOD_ROWS, encoding="cp932"), skip_invalid=True)

    assert result.written is False
    assert user_count(org) == 0


# re-imports ----------------------------------------------------------------------


def test_reimport_same_file_changes_nothing(org):
    """Importing the same file again updates by employee id: 0 created, all unchanged."""
    data = csv_bytes(*GOOD_ROWS)
    run(org, data)
    org.commit()
    events_before = actions(org)

    result = run(org, data)
    org.commit()

    assert (result.created, result.updated, result.unchanged) == (0, 0, 3)
    assert user_count(org) == 3
    assert actions(org) == [*events_before, "user.import"]


def test_reimport_with_changed_name_updates_that_person(org):
    """A changed name in the file updates that person, audited with before and after."""
    run(org, csv_bytes(*GOOD_ROWS))
    org.commit()
    changed = GOOD_ROWS[1].replace("佐藤 花子", "田中 花子")

    result = run(org, csv_bytes(GOOD_ROWS[0], changed, GOOD_ROWS[2]))
    org.commit()

    assert (result.created, result.updated, result.unchanged) == (0, 1, 2)
    hanako = org.scalar(select(User).where(User.employee_id == "E002"))
    assert hanako.name == "田中 花子"
    update = org.scalar(select(AuditEvent).where(AuditEvent.action == "user.update"))
    assert update.object_id == str(hanako.id)
    assert json.loads(update.before_json)["name"] == "佐藤 花子"
    assert json.loads(update.after_json)["name"] == "田中 花子"


def test_reimport_can_change_email_roles_and_department(org):
    """A re-import moves a person's email, roles and department; new rows are created."""
    run(org, csv_bytes(*GOOD_ROWS))
    org.commit()

    result = run(
        org,
        csv_bytes(
            "E001,山田 太郎,yamada@example.jp,DEV,manager,2026-04-01",
            "E004,高橋 健一,kenichi@example.jp,SALES,employee,",
        ),
    )
    org.commit()

    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    taro = org.scalar(select(User).where(User.employee_id == "E001"))
    assert (taro.email, taro.department.code) == ("yamada@example.jp", "DEV")
    assert {r.value for r in taro.roles} == {"manager"}


def test_import_cannot_remove_last_admin_role(org):
    """A row taking the admin role from the last active admin is a row error, not a crash."""
    make_user(org, roles=["admin"], employee_id="A001", email="admin@example.jp", name="管理者")
    org.commit()
    users_before, events_before = user_count(org), actions(org)

    result = run(org, csv_bytes("A001,管理者,admin@example.jp,,employee,"))

    assert [e.line for e in result.errors] == [2]
    assert "last active administrator" in str(result.errors[0])
    assert result.written is False
    org.rollback()  # what every caller does when written is False
    assert user_count(org) == users_before
    assert actions(org) == events_before
    assert {r.value for r in org.scalar(select(User).where(User.employee_id == "A001")).roles} == {
        "admin"
    }


def test_refusal_found_while_writing_leaves_nothing_after_rollback(org):
    """A good row before a refused one is not kept once the caller rolls back."""
    make_user(org, roles=["admin"], employee_id="A001", email="admin@example.jp", name="管理者")
    org.commit()
    users_before, events_before = user_count(org), actions(org)

    result = run(org, csv_bytes(GOOD_ROWS[0], "A001,管理者,admin@example.jp,,employee,"))
    org.rollback()

    assert [e.line for e in result.errors] == [3]
    assert result.written is False
    assert user_count(org) == users_before
    assert actions(org) == events_before


def test_skip_invalid_skips_row_refused_while_writing(org):
    """With skip_invalid, a row refused on write (last admin) is skipped; others are kept."""
    make_user(org, roles=["admin"], employee_id="A001", email="admin@example.jp", name="管理者")
    org.commit()

    result = run(
        org,
        csv_bytes(GOOD_ROWS[0], "A001,管理者,admin@example.jp,,employee,", GOOD_ROWS[2]),
        skip_invalid=True,
    )
    org.commit()

    assert [e.line for e in result.errors] == [3]
    assert (result.created, result.updated, result.written) == (2, 0, True)
    admin = org.scalar(select(User).where(User.employee_id == "A001"))
    assert {r.value for r in admin.roles} == {"admin"}
    assert set(org.scalars(select(User.employee_id))) == {"A001", "E001", "E003"}


def test_reimport_without_language_column_keeps_chosen_language(org):
    """A file without the optional language column leaves each person's language alone."""
    run(org, csv_bytes(*GOOD_ROWS))
    org.commit()
    taro = org.scalar(select(User).where(User.employee_id == "E001"))
    taro.language = "en"
    org.commit()
    events_before = actions(org)

    result = run(org, csv_bytes(*GOOD_ROWS))
    org.commit()

    assert (result.updated, result.unchanged) == (0, 3)
    assert org.scalar(select(User.language).where(User.employee_id == "E001")) == "en"
    assert actions(org) == [*events_before, "user.import"]


def test_language_column_is_optional_and_imported(org):
    """The optional language column sets each person's UI language."""
    data = csv_bytes(GOOD_ROWS[0] + ",EN", GOOD_ROWS[1] + ",", header=HEADER + ",language")

    result = run(org, data)
    org.commit()

    assert result.errors == []
    assert dict(org.execute(select(User.employee_id, User.language)).all()) == {
        "E001": "en",
        "E002": None,
    }


def test_session_left_usable_after_failed_import(org):
    """After a refused import the caller can still import a corrected file."""
    bad = run(org, csv_bytes(GOOD_ROWS[0], GOOD_ROWS[0]))
    assert bad.written is False

    good = run(org, csv_bytes(*GOOD_ROWS))
    org.commit()

    assert good.created == 3
    assert db.session.scalar(select(func.count()).select_from(User)) == 3


# optional columns ----------------------------------------------------------------


def test_file_without_the_optional_columns_imports(org):
    """department, hired_on and language may be left out: people are created without them."""
    data = csv_bytes(
        "E001,山田 太郎,taro@example.jp,employee",
        "E002,佐藤 花子,hanako@example.jp,manager;employee",
        header="employee_id,name,email,roles",
    )

    result = run(org, data)
    org.commit()

    assert result.errors == []
    assert (result.created, result.written) == (2, True)
    rows = org.execute(
        select(User.employee_id, User.department_id, User.hired_on, User.language).order_by(
            User.employee_id
        )
    ).all()
    assert [tuple(r) for r in rows] == [("E001", None, None, None), ("E002", None, None, None)]


def test_reimport_without_optional_columns_keeps_department_and_hire_date(org):
    """A file without department or hired_on leaves each known person's values alone."""
    run(org, csv_bytes(*GOOD_ROWS))
    org.commit()
    events_before = actions(org)

    result = run(
        org,
        csv_bytes(
            "employee,山田 太郎,E001,Taro.Yamada@Example.jp",
            "manager;employee,佐藤 華子,E002,hanako.sato@example.jp",
            header="roles,name,employee_id,email",
        ),
    )
    org.commit()

    assert result.errors == []
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    taro = org.scalar(select(User).where(User.employee_id == "E001"))
    hanako = org.scalar(select(User).where(User.employee_id == "E002"))
    assert (taro.department.code, taro.hired_on) == ("SALES", date(2026, 4, 1))
    assert (hanako.name, hanako.department.code) == ("佐藤 華子", "DEV")
    assert actions(org) == [*events_before, "user.update", "user.import"]


# bulk imports --------------------------------------------------------------------


def test_bulk_import_writes_every_person_role_and_audit_entry_across_batches(org):
    """More people than one batch: all created with their roles, one user.create each, and
    the audit trail still verifies."""
    count = 2 * BATCH_ROWS + 7
    rows = [
        f"E{i:05d},Person {i},p{i}@example.jp,{'SALES' if i % 2 else 'DEV'},"
        f"{'manager;employee' if i % 3 == 0 else 'employee'},2026-04-01"
        for i in range(count)
    ]

    result = run(org, csv_bytes(*rows))
    org.commit()

    assert (result.created, result.written) == (count, True)
    assert user_count(org) == count
    expected_roles = count + len(range(0, count, 3))
    assert org.scalar(select(func.count()).select_from(UserRole)) == expected_roles
    person = org.scalar(select(User).where(User.employee_id == f"E{count - 1:05d}"))
    assert person.email == f"p{count - 1}@example.jp"
    assert person.department.code == ("SALES" if (count - 1) % 2 else "DEV")
    assert actions(org).count("user.create") == count
    create = org.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "user.create", AuditEvent.object_id == str(person.id)
        )
    )
    assert json.loads(create.after_json)["employee_id"] == f"E{count - 1:05d}"
    assert audit.verify(org).ok


def test_bulk_import_with_one_bad_row_writes_nothing(org, flushes):
    """All or nothing holds for a large file: one bad row at the end, no writes at all."""
    rows = [f"E{i:05d},Person {i},p{i}@example.jp,,employee," for i in range(BATCH_ROWS + 1)]

    result = run(org, csv_bytes(*rows, "E99999,Bad,p0@example.jp,,employee,"))

    assert messages(result) == [f"line {BATCH_ROWS + 3}: email: p0@example.jp also on line 2"]
    assert flushes == []
    assert_nothing_written(org, result, 0, actions(org))


def test_validation_asks_the_database_a_fixed_number_of_times(org):
    """Checking rows makes no query per row: 10 and 300 rows take the same queries."""

    def queries_for(rows: int) -> int:
        statements = []
        engine = org.get_bind()
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            data = [f"E{i:04d},P {i},p{i}@example.jp,SALES,employee,x" for i in range(rows)]
            result = run(org, csv_bytes(*data))  # every hired_on is bad: nothing written
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert len(result.errors) == rows
        org.rollback()
        return len(statements)

    assert queries_for(300) == queries_for(10)


class ChangedWhileRead(io.BytesIO):
    """A file whose last line, once read, lets another transaction commit a change: as if
    an admin edited people while a large file was being checked."""

    def __init__(self, data: bytes, change):
        super().__init__(data)
        self.change = change

    def __next__(self):
        try:
            return super().__next__()
        except StopIteration:
            if self.change is not None:
                self.change, change = None, self.change
                change()
            raise


@pytest.mark.parametrize("what", ["email-taken", "person-renamed"])
def test_change_committed_during_the_check_refuses_the_import(org, what):
    """A change made by someone else while the file is checked: nothing is imported and the
    message asks to import again (the plan was checked against what is no longer true)."""
    run(org, csv_bytes(GOOD_ROWS[0]))
    org.commit()
    users_before, events_before = user_count(org), actions(org)
    org.rollback()  # as the CLI does, start the import with no transaction open

    def change():
        with org.get_bind().begin() as other:
            if what == "email-taken":
                other.execute(
                    sa.insert(User).values(
                        employee_id="X9", name="Other", email="hanako.sato@example.jp"
                    )
                )
            else:
                other.execute(sa.update(User).where(User.employee_id == "E001").values(name="改名"))

    stream = ChangedWhileRead(csv_bytes(*GOOD_ROWS), change)
    result = import_users(org, "test", stream)

    assert messages(result) == [
        "line 1: file: people or departments were changed while the file was being checked; "
        "nothing was imported, import it again"
    ]
    assert result.written is False
    org.rollback()
    expected_users = users_before + (1 if what == "email-taken" else 0)
    assert user_count(org) == expected_users
    assert actions(org) == events_before
