"""`auditapp users …`: add, list, roles, deactivate, reset passwords and the HR import."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest

from auditapp.errors import Forbidden, InvalidInput
from auditapp.extensions import db
from tests.cli.helpers import actions, counts, invoke, last_event, person, sign_in
from tests.factories import make_department, make_user

HEADER = "employee_id,name,email,department,roles,hired_on"
GOOD_ROWS = [
    "E001,山田 太郎,taro.yamada@example.jp,SALES,employee,2026-04-01",
    "E002,佐藤 花子,hanako.sato@example.jp,開発部,manager;employee,2026/04/01",
    "E003,鈴木 一郎,ichiro.suzuki@example.jp,,auditor,2026年4月1日",
]


def csv_bytes(*rows: str, header: str = HEADER, encoding: str = "utf-8", bom: bool = False):
    """A CSV file as bytes: the header line, then the given rows, CRLF line ends like Excel."""
    body = "\r\n".join([header, *rows]) + "\r\n"
    return ("\ufeff" if bom else "").encode("utf-8") + body.encode(encoding)


@pytest.fixture
def org(app):
    """Departments SALES (営業部) and DEV (開発部), committed."""
    with app.app_context():
        make_department(db.session, code="SALES", name="営業部")
        make_department(db.session, code="DEV", name="開発部")
        db.session.commit()
    return app


@pytest.fixture
def csv_file(tmp_path):
    """Write bytes to a CSV file and return its path as text."""

    def write(data: bytes, name: str = "people.csv") -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)

    return write


# users add ---------------------------------------------------------------------

ADD = ["users", "add", "--employee-id", "E100", "--name", "山田 太郎", "--roles", "employee"]


def test_users_add_creates_person_and_prints_password_once(org, runner):
    """`users add` creates the person (email lower-cased) and prints a working password."""
    result = invoke(
        runner,
        *ADD,
        "--email",
        "Taro@Example.JP",
        "--department",
        "営業部",
        "--hired-on",
        "2026-04-01",
    )

    assert result.exit_code == 0, result.output
    match = re.search(
        r"^created taro@example\.jp \(id \d+\); one-time password: (\S+)$", result.output
    )
    assert match, result.output
    assert person(org, "taro@example.jp") == {
        "employee_id": "E100",
        "name": "山田 太郎",
        "department": "SALES",
        "roles": {"employee"},
        "active": True,
        "hired_on": "2026-04-01",
        "must_change_password": True,
    }
    assert last_event(org, "user.create")["actor"].startswith("cli:")
    assert sign_in(org, "taro@example.jp", match.group(1)) == "taro@example.jp"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--email", "ADMIN@example.jp"],
            "error: email: admin@example.jp is already used by A001",
        ),
        (
            ["--email", "taro.example.jp"],
            "error: email: 'taro.example.jp' is not a valid email address",
        ),
        (
            ["--email", "taro@example.jp", "--roles", "boss"],
            "error: roles: unknown role 'boss' (known: admin, auditor, employee, manager)",
        ),
        (
            ["--email", "taro@example.jp", "--department", "NOPE"],
            "error: department: unknown department 'NOPE'",
        ),
        (
            ["--email", "taro@example.jp", "--name", "名" * 121],
            "error: name: is too long (121 characters, at most 120)",
        ),
        (
            ["--email", "taro@example.jp", "--hired-on", "2026-02-30"],
            "error: hired_on: '2026-02-30' is not a real date (day is out of range for month)",
        ),
    ],
    ids=[
        "duplicate-email",
        "malformed-email",
        "unknown-role",
        "unknown-department",
        "long-name",
        "impossible-date",
    ],
)
def test_users_add_refuses_bad_input(org, runner, options, message):
    """`users add` with a bad field exits 1 naming the field and problem; nothing is written."""
    with org.app_context():
        make_user(db.session, roles=["admin"], employee_id="A001", email="admin@example.jp")
        db.session.commit()
    before = counts(org)

    result = invoke(runner, *ADD, *options)

    assert result.exit_code == 1
    assert message in result.stderr.splitlines()
    assert counts(org) == before


# users list --------------------------------------------------------------------


def test_users_list_table_is_aligned(app, runner):
    """`users list` prints an aligned table (wide Japanese characters count double)."""
    with app.app_context():
        dept = make_department(db.session, code="SALES", name="営業部")
        make_user(db.session, employee_id="E1", name="Ann Lee", email="ann@example.jp")
        make_user(
            db.session,
            employee_id="E2",
            name="長谷川 美咲",
            email="misaki@example.jp",
            department=dept,
            roles=["manager", "employee"],
        )
        db.session.commit()

    result = invoke(runner, "users", "list")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["employee_id", "name", "email", "department", "roles", "active"]
    assert lines[1].split() == ["E1", "Ann", "Lee", "ann@example.jp", "employee", "yes"]
    assert lines[2].split() == [
        "E2",
        "長谷川",
        "美咲",
        "misaki@example.jp",
        "SALES",
        "employee;manager",
        "yes",
    ]

    def column_of(line: str, word: str) -> int:
        prefix = line[: line.index(word)]
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in prefix)

    assert (
        column_of(lines[0], "email")
        == column_of(lines[1], "ann@")
        == column_of(lines[2], "misaki@")
    )


def test_users_list_hides_deactivated_unless_all(app, runner, users):
    """Deactivated people are listed only with --all, marked active=no."""
    assert invoke(runner, "users", "deactivate", users["employee"]).exit_code == 0

    listed = invoke(runner, "users", "list", "--format", "csv")
    everyone = invoke(runner, "users", "list", "--format", "csv", "--all")

    assert users["employee"] not in listed.output
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(everyone.output))}
    assert rows[users["employee"]]["active"] == "no"
    assert rows[users["admin"]]["active"] == "yes"


def test_users_list_csv_neutralizes_formulas(app, runner):
    """`users list --format csv` prefixes cells starting with = + - @ with a quote."""
    with app.app_context():
        make_user(db.session, employee_id="-E1", name='=HYPERLINK("http://x")', email="a@x.jp")
        make_user(db.session, employee_id="E2", name="@SUM(1+1)", email="b@x.jp")
        make_user(db.session, employee_id="E3", name="+81 太郎", email="c@x.jp")
        make_user(db.session, employee_id="E4", name="普通 花子", email="d@x.jp")
        db.session.commit()

    result = invoke(runner, "users", "list", "--format", "csv")

    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["employee_id", "name", "email", "department", "roles", "active"]
    by_email = {r[2]: r for r in rows[1:]}
    assert by_email["a@x.jp"][:2] == ["'-E1", '\'=HYPERLINK("http://x")']
    assert by_email["b@x.jp"][1] == "'@SUM(1+1)"
    assert by_email["c@x.jp"][1] == "'+81 太郎"
    assert by_email["d@x.jp"][1] == "普通 花子"


# set-roles, deactivate, reset-password -----------------------------------------------


def test_users_set_roles_replaces_roles_and_audits(app, runner, users):
    """`users set-roles` replaces the roles, prints them, and audits before/after."""
    result = invoke(runner, "users", "set-roles", users["employee"].upper(), "manager;employee")

    assert result.exit_code == 0, result.output
    assert f"{users['employee']}: roles now employee;manager" in result.output
    assert person(app, users["employee"])["roles"] == {"employee", "manager"}
    event = last_event(app, "user.update")
    assert event["before"]["roles"] == ["employee"]
    assert event["after"]["roles"] == ["employee", "manager"]


def test_users_set_roles_refuses_unknown_role(app, runner, users):
    """An unknown role exits 1 with the known roles listed; the roles stay as they were."""
    result = invoke(runner, "users", "set-roles", users["employee"], "boss")

    assert result.exit_code == 1
    assert "error: roles: unknown role 'boss'" in result.stderr
    assert person(app, users["employee"])["roles"] == {"employee"}


def test_users_set_roles_refuses_to_demote_last_admin(app, runner, users):
    """The last active administrator cannot lose the admin role."""
    before = counts(app)

    result = invoke(runner, "users", "set-roles", users["admin"], "employee")

    assert result.exit_code == 1
    assert "error: The last active administrator cannot lose the admin role" in result.stderr
    assert person(app, users["admin"])["roles"] == {"admin"}
    assert counts(app) == before


def test_users_deactivate_stops_sign_in(app, runner, users):
    """A deactivated person can no longer authenticate; the change is audited."""
    result = invoke(runner, "users", "deactivate", users["employee"])

    assert result.exit_code == 0, result.output
    assert f"{users['employee']}: deactivated" in result.output
    assert person(app, users["employee"])["active"] is False
    event = last_event(app, "user.deactivate")
    assert (event["before"]["active"], event["after"]["active"]) == (True, False)
    with pytest.raises(Forbidden):
        sign_in(app, users["employee"], "correct-horse-battery-staple")


def test_users_deactivate_an_admin_when_another_remains(app, runner, users):
    """An administrator can be deactivated while another active administrator exists."""
    with app.app_context():
        make_user(db.session, roles=["admin"], email="admin2@example.jp")
        db.session.commit()

    result = invoke(runner, "users", "deactivate", users["admin"])

    assert result.exit_code == 0, result.output
    assert person(app, users["admin"])["active"] is False


def test_users_deactivate_last_admin_refused(app, runner, users):
    """Deactivating the last active administrator exits 1 and changes nothing."""
    before = counts(app)

    result = invoke(runner, "users", "deactivate", users["admin"])

    assert result.exit_code == 1
    assert "error: The last active administrator cannot lose the admin role" in result.stderr
    assert person(app, users["admin"])["active"] is True
    assert counts(app) == before


def test_users_command_on_unknown_email_fails(app, runner, users):
    """Naming nobody exits 1 with 'No user with email'."""
    result = invoke(runner, "users", "reset-password", "nobody@example.jp")

    assert result.exit_code == 1
    assert "error: No user with email 'nobody@example.jp'." in result.stderr


def test_users_reset_password_gives_working_one_time_password(app, runner, users):
    """`users reset-password` prints a new password that works and must be changed."""
    email = users["employee"]

    result = invoke(runner, "users", "reset-password", email)

    assert result.exit_code == 0, result.output
    match = re.search(
        rf"^{re.escape(email)}: one-time password (\S+) \(must be changed", result.output
    )
    assert match, result.output
    assert person(app, email)["must_change_password"] is True
    assert "user.password_reset" in actions(app)
    with pytest.raises(InvalidInput):
        sign_in(app, email, "correct-horse-battery-staple")
    assert sign_in(app, email, match.group(1)) == email


# users import ------------------------------------------------------------------


def test_import_good_utf8_file(org, runner, csv_file):
    """A valid UTF-8 file imports every row and reports the counts."""
    result = invoke(runner, "users", "import", csv_file(csv_bytes(*GOOD_ROWS)))

    assert result.exit_code == 0, result.output
    assert "imported: 3 created, 0 updated, 0 unchanged" in result.output
    assert person(org, "taro.yamada@example.jp")["department"] == "SALES"
    assert person(org, "hanako.sato@example.jp")["roles"] == {"manager", "employee"}
    assert person(org, "ichiro.suzuki@example.jp")["hired_on"] == "2026-04-01"
    summary = last_event(org, "user.import")
    assert summary["after"] == {"created": 3, "updated": 0, "unchanged": 0, "skipped_errors": 0}
    assert summary["client_addr"] == "cli"


def test_import_utf8_with_bom(org, runner, csv_file):
    """A UTF-8 file with a byte-order mark imports (its first column is still employee_id)."""
    result = invoke(runner, "users", "import", csv_file(csv_bytes(*GOOD_ROWS, bom=True)))

    assert result.exit_code == 0, result.output
    assert "imported: 3 created" in result.output
    assert person(org, "taro.yamada@example.jp")["employee_id"] == "E001"


def test_import_cp932_with_encoding_option(org, runner, csv_file):
    """A CP932 (Japanese Excel) file imports with --encoding cp932, names intact."""
    path = csv_file(csv_bytes(*GOOD_ROWS, encoding="cp932"))

    result = invoke(runner, "users", "import", path, "--encoding", "cp932")

    assert result.exit_code == 0, result.output
    assert "imported: 3 created" in result.output
    assert person(org, "hanako.sato@example.jp")["name"] == "佐藤 花子"
    assert person(org, "hanako.sato@example.jp")["department"] == "DEV"


def test_import_cp932_read_as_utf8_fails_with_hint(org, runner, csv_file):
    """A CP932 file read as UTF-8 exits 1 with a line number and the --encoding cp932 hint."""
    before = counts(org)

    result = invoke(runner, "users", "import", csv_file(csv_bytes(*GOOD_ROWS, encoding="cp932")))

    assert result.exit_code == 1
    assert re.search(r"^line \d+: file: .*--encoding cp932", result.stderr, re.M)
    assert "1 problem(s); nothing was imported" in result.stderr
    assert counts(org) == before


def test_import_cp932_read_as_utf8_names_the_bad_line(org, runner, csv_file):
    """The decode error names the first line that is not UTF-8 (line 2 here)."""
    result = invoke(runner, "users", "import", csv_file(csv_bytes(*GOOD_ROWS, encoding="cp932")))

    assert result.exit_code == 1
    assert result.stderr.startswith("line 2: file: the file is not valid UTF-8")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "line 1: file: the file is empty (expected a header line)"),
        (csv_bytes(), "line 2: file: no data rows after the header"),
        (
            csv_bytes(*GOOD_ROWS, header=HEADER.replace(",roles", "")),
            "line 1: file: missing column(s): roles",
        ),
        (
            csv_bytes(GOOD_ROWS[0], "E002,佐藤 花子,hanako@example.jp,,employee", GOOD_ROWS[2]),
            "line 3: row: expected 6 columns, found 5",
        ),
        (
            csv_bytes(*GOOD_ROWS, "E004,山田 次郎,Taro.Yamada@example.jp,,employee,"),
            "line 5: email: taro.yamada@example.jp also on line 2",
        ),
    ],
    ids=["empty", "header-only", "missing-column", "column-count", "duplicate-email-in-file"],
)
def test_import_file_problem_fails_and_writes_nothing(org, runner, csv_file, data, message):
    """A file-level or cross-row problem exits 1 with 'line N: column: problem'; no writes."""
    before = counts(org)

    result = invoke(runner, "users", "import", csv_file(data))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message, "1 problem(s); nothing was imported"]
    assert counts(org) == before
    assert "user.import" not in actions(org)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "E002,佐藤 花子,hanako@example.jp,,boss,",
            "line 3: roles: unknown role 'boss' (known: admin, auditor, employee, manager)",
        ),
        (
            "E002,佐藤 花子,hanako@example.jp,NOPE,employee,",
            "line 3: department: unknown department 'NOPE'",
        ),
        (
            "E002,佐藤 花子,taken@example.jp,,employee,",
            "line 3: email: taken@example.jp is already used by X001",
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
            "E002,佐藤 花子,hanako.example.jp,,employee,",
            "line 3: email: 'hanako.example.jp' is not a valid email address",
        ),
        (
            "E002,佐藤 花子,hanako@example.jp,,employee,2026-02-30",
            "line 3: hired_on: '2026-02-30' is not a real date (day is out of range for month)",
        ),
    ],
    ids=[
        "unknown-role",
        "unknown-department",
        "email-of-another-employee",
        "long-name",
        "long-employee-id",
        "malformed-email",
        "impossible-date",
    ],
)
def test_import_bad_row_fails_and_writes_nothing(org, runner, csv_file, row, message):
    """A row failing validation exits 1 with 'line N: column: problem'; nothing is written."""
    with org.app_context():
        make_user(db.session, employee_id="X001", email="taken@example.jp")
        db.session.commit()
    before = counts(org)

    result = invoke(runner, "users", "import", csv_file(csv_bytes(GOOD_ROWS[0], row, GOOD_ROWS[2])))

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [message, "1 problem(s); nothing was imported"]
    assert counts(org) == before
    assert "user.import" not in actions(org)


def test_import_refuses_to_demote_last_admin(org, runner, csv_file):
    """A row removing the last admin's admin role exits 1 naming the line; nothing written."""
    with org.app_context():
        make_user(db.session, roles=["admin"], employee_id="A001", email="admin@example.jp")
        db.session.commit()
    before = counts(org)
    data = csv_bytes(GOOD_ROWS[0], "A001,管理者,admin@example.jp,,employee,")

    result = invoke(runner, "users", "import", csv_file(data))

    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("line 3: ")
    assert "last active administrator" in first
    assert "1 problem(s); nothing was imported" in result.stderr
    assert counts(org) == before
    assert person(org, "admin@example.jp")["roles"] == {"admin"}


def test_import_japanese_dates_accepted(org, runner, csv_file):
    """hired_on written 2026年4月1日 or 2026/04/01 is imported as 2026-04-01."""
    data = csv_bytes(
        "E001,山田 太郎,taro@example.jp,,employee,2026年4月1日",
        "E002,佐藤 花子,hanako@example.jp,,employee,2026/04/01",
    )

    result = invoke(runner, "users", "import", csv_file(data))

    assert result.exit_code == 0, result.output
    assert person(org, "taro@example.jp")["hired_on"] == "2026-04-01"
    assert person(org, "hanako@example.jp")["hired_on"] == "2026-04-01"


def test_import_skip_invalid_imports_good_rows(org, runner, csv_file):
    """--skip-invalid imports the good rows, reports each bad one, and exits 0."""
    data = csv_bytes(
        GOOD_ROWS[0],
        "E002,short",
        GOOD_ROWS[2],
        "E004,山田 次郎,taro.yamada@example.jp,,employee,",
    )

    result = invoke(runner, "users", "import", csv_file(data), "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "line 3: row: expected 6 columns, found 2",
        "line 5: email: taro.yamada@example.jp also on line 2",
    ]
    assert "imported: 2 created, 0 updated, 0 unchanged, 2 row problem(s) skipped" in result.stdout
    assert counts(org)[0] == 2
    assert last_event(org, "user.import")["after"]["skipped_errors"] == 2


def test_import_skip_invalid_skips_rows_failing_validation(org, runner, csv_file):
    """--skip-invalid also skips a row with an unknown role and imports the rest."""
    data = csv_bytes(GOOD_ROWS[0], "E002,佐藤 花子,hanako@example.jp,,boss,", GOOD_ROWS[2])

    result = invoke(runner, "users", "import", csv_file(data), "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith("line 3: roles: unknown role 'boss'")
    assert "imported: 2 created, 0 updated, 0 unchanged, 1 row problem(s) skipped" in result.stdout


def test_import_twice_updates_instead_of_duplicating(org, runner, csv_file):
    """Re-importing the same file creates no one: 0 created, 3 unchanged, no user events."""
    path = csv_file(csv_bytes(*GOOD_ROWS))
    assert invoke(runner, "users", "import", path).exit_code == 0
    people, _ = counts(org)
    events_before = actions(org)

    result = invoke(runner, "users", "import", path)

    assert result.exit_code == 0, result.output
    assert "imported: 0 created, 0 updated, 3 unchanged" in result.output
    assert counts(org)[0] == people == 3
    assert actions(org) == [*events_before, "user.import"]


def test_import_changed_name_updates_that_person(org, runner, csv_file):
    """A changed name in a re-import updates that person, audited as user.update."""
    assert invoke(runner, "users", "import", csv_file(csv_bytes(*GOOD_ROWS))).exit_code == 0
    changed = [GOOD_ROWS[0], GOOD_ROWS[1].replace("佐藤 花子", "田中 花子"), GOOD_ROWS[2]]

    result = invoke(runner, "users", "import", csv_file(csv_bytes(*changed), "v2.csv"))

    assert result.exit_code == 0, result.output
    assert "imported: 0 created, 1 updated, 2 unchanged" in result.output
    assert person(org, "hanako.sato@example.jp")["name"] == "田中 花子"
    event = last_event(org, "user.update")
    assert event["before"]["name"] == "佐藤 花子"
    assert event["after"]["name"] == "田中 花子"
    assert event["actor"].startswith("cli:")


def test_import_missing_file_is_a_usage_error(org, runner, tmp_path):
    """A path that does not exist is refused by the option parser (exit 2)."""
    result = invoke(runner, "users", "import", str(tmp_path / "nope.csv"))

    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_unlock_lets_a_throttled_admin_sign_in_again(app, runner):
    """Five wrong passwords refuse the admin from that client; `users unlock` (no sign-in
    needed) clears them, records who did it, and the right password works again."""
    from auditapp.errors import TooManyRequests
    from tests.factories import PASSWORD

    with app.app_context():
        make_user(db.session, roles=["admin"], email="boss@example.jp")
        db.session.commit()
    for _ in range(5):
        with pytest.raises(InvalidInput):
            sign_in(app, "boss@example.jp", "wrong password here")
    with pytest.raises(TooManyRequests):
        sign_in(app, "boss@example.jp", PASSWORD)

    result = invoke(runner, "users", "unlock", "boss@example.jp")

    assert result.exit_code == 0, result.output
    assert "boss@example.jp: unlocked (5 failed sign-in(s) cleared)" in result.output
    assert last_event(app, "user.unlock")["after"]["failures_cleared"] == 5
    assert sign_in(app, "boss@example.jp", PASSWORD) == "boss@example.jp"


def test_unlock_of_an_unknown_person_is_one_line_and_exit_1(runner):
    """An email nobody has: a clear line, exit 1."""
    result = invoke(runner, "users", "unlock", "nobody@example.jp")
    assert result.exit_code == 1
    assert "nobody@example.jp" in result.output
