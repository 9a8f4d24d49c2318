"""Factories that create domain objects directly through the services."""

from __future__ import annotations

import itertools

from auditapp.models import Department
from auditapp.services import auth, departments, users

PASSWORD = "correct-horse-battery-staple"
_HASH = auth.hash_password(PASSWORD)  # hashing is slow on purpose; do it once
_seq = itertools.count(1)


def make_department(session, code: str | None = None, name: str | None = None) -> Department:
    """A department (code and name made up when not given)."""
    n = next(_seq)
    return departments.create(
        session,
        "test",
        {"code": code or f"D{n}", "name": name or f"部署{n}", "name_en": f"Dept {n}"},
    )


def make_evidence(
    app, session, data: bytes = b"%PDF-1.4\nfactory\n", link="control:ORG-01", name="factory.pdf"
):
    """An evidence item linked to an object, uploaded by the command line through the one
    upload flow. The session is committed first: the flow ends the planning transaction,
    so work not yet committed would be lost. The item itself is left for the caller to
    commit."""
    import io
    from datetime import date

    from auditapp.services import evidence

    session.commit()
    plan = evidence.plan_upload(
        session,
        "test",
        links=[link],
        description="factory",
        valid_until=None,
        supersedes_id=None,
        today=date.today(),
    )
    return evidence.store_upload(
        session,
        app.extensions["evidence_store"],
        "test",
        plan,
        io.BytesIO(data),
        name,
        today=date.today(),
        retention_years=5,
    )


def own_control(session, code: str, owner, checks_from):
    """A synced control owned by `owner`, checked from `checks_from` (a date) on."""
    from auditapp.services import catalog

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
    control.checks_from = checks_from
    return control


def make_check_and_finding(session, code: str, owner=None, today=None):
    """A synced control given an owner (a new manager unless given), its current checks,
    and a finding on the first of them. The catalog must be synced."""
    from datetime import date, timedelta

    from auditapp.services import catalog, checks

    today = today or date.today()
    owner = owner or make_user(session, roles=["manager"])
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
    checks.materialize(session, today, checks.CheckSettings())
    check = checks.history_for_control(session, control)[-1]
    finding = checks.open_finding(
        session,
        "test",
        control,
        check,
        {
            "description": "記録漏れ",
            "risk": "medium",
            "remediation_plan": "様式を改める",
            "due_date": today + timedelta(days=30),
        },
    )
    return check, finding


def make_user(session, *, roles=("employee",), email: str | None = None, department=None, **fields):
    """A person with the shared test password who need not change it."""
    n = next(_seq)
    data = {
        "employee_id": fields.pop("employee_id", f"T{n:05d}"),
        "name": fields.pop("name", f"テスト 太郎{n}"),
        "email": email or f"user{n}@example.jp",
        "roles": list(roles),
        "department": department.code if department is not None else "",
        **fields,
    }
    user, _ = users.create(session, "test", data, password_hash=_HASH)
    return user


def make_course(session, **overrides):
    """A course created through the service: an annual training for everyone, effective
    2026-04-01, unless overridden (`today` is the day it is created, i.e. effective_from;
    `departments` may be Department objects or ids)."""
    from datetime import date

    from auditapp.services import training

    n = next(_seq)
    today = overrides.pop("today", date(2026, 4, 1))
    data = {
        "code": f"C{n:03d}",
        "title_ja": f"研修{n}",
        "title_en": f"Course {n}",
        "kind": "training",
        "recurrence_months": 12,
        "new_hire_grace_days": 30,
        "due_soon_days": 30,
        "audience": "all",
    } | overrides
    data["departments"] = [d if isinstance(d, int) else d.id for d in data.get("departments", [])]
    return training.create_course(session, "test", data, today)
