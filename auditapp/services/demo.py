"""A demo organization so a new installation shows a living app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditapp.models import Department
from auditapp.services import audit, auth, catalog, departments, users

DEPARTMENTS = [
    ("GA", "総務部", "General Affairs"),
    ("HR", "人事部", "Human Resources"),
    ("SALES", "営業部", "Sales"),
    ("DEV", "開発部", "Development"),
    ("IS", "情報システム部", "Information Systems"),
    ("CS", "カスタマーサポート部", "Customer Support"),
]

FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "林",
    "清水",
    "山崎",
]
FAMILY_EN = [
    "sato",
    "suzuki",
    "takahashi",
    "tanaka",
    "ito",
    "watanabe",
    "yamamoto",
    "nakamura",
    "kobayashi",
    "kato",
    "yoshida",
    "yamada",
    "sasaki",
    "yamaguchi",
    "matsumoto",
    "inoue",
    "kimura",
    "hayashi",
    "shimizu",
    "yamazaki",
]
GIVEN = ["花子", "太郎", "美咲", "健一", "陽菜", "大輔", "結衣", "翔", "彩", "誠"]
GIVEN_EN = ["hanako", "taro", "misaki", "kenichi", "hina", "daisuke", "yui", "sho", "aya", "makoto"]

DEMO_DOMAIN = "demo.example.jp"


@dataclass
class DemoResult:
    """What the demo created and the password its people sign in with."""

    departments: int
    people: int
    password: str


def has_data(session: Session) -> bool:
    """True when the organization already has departments (demo or real)."""
    return bool(session.scalar(select(func.count()).select_from(Department)))


def _roles_for(index: int, dept_index: int) -> list[str]:
    """Each department has one manager; a couple of auditors and a second admin exist."""
    roles = ["employee"]
    if index == 0:
        roles.append("manager")
    if dept_index == 0 and index == 1:
        roles.append("admin")
    if dept_index == 0 and index == 2:
        roles = ["auditor"]
    if dept_index == 4 and index == 1:
        roles.append("auditor")
    return roles


def _assign_owners(session: Session, actor) -> int:
    """Give the synced controls owners among the managers, round robin; the last control is
    left without one so the admin's home page shows how an unowned control is flagged."""
    controls = catalog.search(session, catalog.ControlFilter())
    owners = catalog.managers(session)
    if not owners:
        return 0
    for i, control in enumerate(controls[:-1]):
        catalog.update_settings(
            session,
            actor,
            control,
            owner_email=owners[i % len(owners)].email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
    return max(0, len(controls) - 1)


def create(session: Session, actor, *, people: int = 30, today: date | None = None) -> DemoResult:
    """Create the demo departments and `people` people spread across them and all roles.

    Everyone shares one generated password (printed once), so a visitor can sign in
    as each role. The caller commits.
    """
    today = today or date.today()
    password = auth.generate_password()
    shared_hash = auth.hash_password(password)
    depts = [
        departments.create(session, actor, {"code": c, "name": n, "name_en": e})
        for c, n, e in DEPARTMENTS
    ]
    for i in range(people):
        dept_index = i % len(depts)
        within = i // len(depts)
        family, given = i % len(FAMILY), (i * 7) % len(GIVEN)
        users.create(
            session,
            actor,
            {
                "employee_id": f"E{1001 + i:05d}",
                "name": f"{FAMILY[family]} {GIVEN[given]}",
                "email": f"{GIVEN_EN[given]}.{FAMILY_EN[family]}{i + 1}@{DEMO_DOMAIN}",
                "department": depts[dept_index].code,
                "roles": _roles_for(within, dept_index),
                "hired_on": (today - timedelta(days=30 + 97 * i)).isoformat(),
            },
            password_hash=shared_hash,
        )
    owned = _assign_owners(session, actor)
    audit.record(
        session,
        actor=actor,
        action="demo.create",
        object_type="organization",
        after={"departments": len(depts), "people": people, "owned_controls": owned},
    )
    return DemoResult(len(depts), people, password)
