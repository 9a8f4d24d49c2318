"""Import people from an HR CSV: validate every row first, then write all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditapp.errors import DomainError, InvalidInput
from auditapp.models import User
from auditapp.services import audit, users
from auditapp.services.csvfile import CsvFileError, RowError, read_rows

COLUMNS = {"employee_id", "name", "email", "department", "roles", "hired_on"}
OPTIONAL = {"language"}


@dataclass
class ImportResult:
    """What an import did (or would have done) and every problem found."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False


def import_users(
    session: Session,
    actor,
    stream: BinaryIO,
    *,
    encoding: str = "utf-8",
    skip_invalid: bool = False,
) -> ImportResult:
    """Import users from a CSV byte stream, keyed by employee_id (a re-import updates).

    Every row is validated before anything is written. With errors and no
    skip_invalid, nothing is written and `written` stays False. New users get a
    random password and must use the reset flow (an admin resets it) to sign in.
    """
    result = ImportResult()
    try:
        csv_rows = read_rows(stream, encoding=encoding, required=COLUMNS, optional=OPTIONAL)
        good: list[tuple[int, User | None, dict]] = []
        seen_ids: dict[str, int] = {}
        seen_emails: dict[str, int] = {}
        for line, row in csv_rows.rows:
            if "__width__" in row:
                result.errors.append(RowError(line, "row", row["__width__"]))
                continue
            emp = (row.get("employee_id") or "").strip()
            current = session.scalar(select(User).where(User.employee_id == emp)) if emp else None
            try:
                fields = users.validate(session, row, current=current)
            except InvalidInput as exc:
                result.errors.extend(RowError(line, col, msg) for col, msg in exc.errors.items())
                continue
            if fields.employee_id in seen_ids:
                result.errors.append(
                    RowError(
                        line,
                        "employee_id",
                        f"{fields.employee_id} also on line {seen_ids[fields.employee_id]}",
                    )
                )
                continue
            if fields.email in seen_emails:
                result.errors.append(
                    RowError(
                        line, "email", f"{fields.email} also on line {seen_emails[fields.email]}"
                    )
                )
                continue
            seen_ids[fields.employee_id] = line
            seen_emails[fields.email] = line
            good.append((line, current, row))
    except CsvFileError as exc:
        result.errors.append(RowError(exc.line, "file", str(exc).split(": ", 1)[1]))
        return result
    if not good and not result.errors:
        result.errors.append(RowError(2, "file", "no data rows after the header"))
    if result.errors and not skip_invalid:
        return result
    for line, current, row in good:
        if current is not None and "language" not in row:
            row["language"] = current.language or ""  # a file without the column keeps it
        try:
            # A savepoint per row: a rule checked only on write (the last admin keeps the
            # role) becomes this row's error instead of ending the whole import.
            with session.begin_nested():
                if current is None:
                    users.create(session, actor, row)
                    result.created += 1
                    continue
                before = users.snapshot(current)
                users.update(session, actor, current, row)
        except DomainError as exc:
            field = next(iter(exc.errors), "row")
            result.errors.append(RowError(line, field, str(exc.errors.get(field, exc.message))))
            continue
        if users.snapshot(current) == before:
            result.unchanged += 1
        else:
            result.updated += 1
    if result.errors and not skip_invalid:
        return result
    audit.record(
        session,
        actor=actor,
        action="user.import",
        object_type="user",
        after={
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "skipped_errors": len(result.errors),
        },
    )
    result.written = True
    return result
