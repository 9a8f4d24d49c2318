"""A demo organization so a new installation shows a living app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditapp.models import Check, Department, User, UserRole
from auditapp.services import (
    audit,
    auth,
    catalog,
    checks,
    departments,
    evidence,
    filetypes,
    periods,
    users,
)

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
                "hired_on": (today - timedelta(days=30 + (97 * i) % 10_000)).isoformat(),
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


# History: checks with attestations, reviews and findings -------------------------------

_STATEMENTS = {
    "effective": "手順どおり点検し、記録に不備はありませんでした。Checked as described; no issues.",
    "deficient": "点検で記録の不備を確認しました。Records were incomplete for part of the period.",
    "not_applicable": "当期は該当する取扱いがありませんでした。No such processing this period.",
}


def _pdf(text: str) -> bytes:
    """A small, valid-looking PDF standing in for a scanned record."""
    return f"%PDF-1.4\n% auditapp demo evidence\n% {text}\n%%EOF\n".encode()


def _check_evidence(session: Session, store, owner, check: Check, today, retention_years):
    """A demo record (a small PDF) attached to a check by its owner, inside the demo's
    one transaction (bulk set-up; not the upload flow, which ends transactions)."""
    blob = store.put_stream([_pdf(f"{check.control.code} {check.period_key}")])
    plan = evidence.plan_upload(
        session,
        owner,
        links=[f"check:{check.id}"],
        description=f"{check.period_key} 点検記録",
        valid_until=None,
        supersedes_id=None,
        today=today,
    )
    evidence.record_upload(
        session,
        owner,
        plan,
        blob,
        filetypes.BY_EXTENSION[".pdf"],
        f"{check.control.code}_{check.period_key}.pdf",
        retention_years=retention_years,
        today=today,
    )


def history(
    session: Session,
    actor,
    store,
    *,
    today: date,
    years: int,
    cfg: checks.CheckSettings,
    retention_years: int,
) -> dict:
    """Give the owned controls `years` fiscal years of checks: past ones attested (mostly
    effective, some deficient with findings, a few not applicable) and reviewed, recent
    ones awaiting review, a couple returned, the current ones open."""
    first_fy = periods.fiscal_year_of(today, cfg.start_month) - (years - 1)
    start = periods.fiscal_year_bounds(first_fy, cfg.start_month)[0]
    owned = [c for c in catalog.search(session, catalog.ControlFilter()) if c.owner_id]
    for control in owned:
        control.checks_from = start
    session.flush()
    created = checks.materialize(session, today, cfg, since=start)
    reviewer = session.scalar(
        select(User)
        .join(UserRole)
        .where(UserRole.role == "admin", User.employee_id != "ADMIN-1")
        .order_by(User.id)
        .limit(1)
    ) or users.any_admin(session)
    past = session.scalars(
        select(Check).where(Check.period_end < today).order_by(Check.period_end, Check.id)
    ).all()
    counts = {"created": created, "attested": 0, "accepted": 0, "returned": 0, "findings": 0}
    for n, check in enumerate(past):
        owner = check.control.owner
        roll = (n * 37 + check.control_id * 11) % 100
        result = "deficient" if roll < 6 else "not_applicable" if roll < 10 else "effective"
        if result == "effective" and check.control.evidence_required:
            _check_evidence(session, store, owner, check, today, retention_years)
        finding = None
        if result == "deficient":
            finding = {
                "description": "一部の記録に記入漏れがありました。Some entries were missing.",
                "risk": ("medium", "high", "low")[n % 3],
                "remediation_plan": "記録様式を見直し、月次で責任者が確認します。",
                "due_date": (today + timedelta(days=20 + n % 40)).isoformat(),
            }
        attestation = checks.attest(
            session,
            owner,
            check,
            result=result,
            statement=_STATEMENTS[result],
            finding=finding,
            today=today,
        )
        attested_on = min(check.period_end + timedelta(days=3 + n % 9), today)
        attestation.attested_at = datetime.combine(attested_on, time(10, 0), tzinfo=UTC)
        counts["attested"] += 1
        counts["findings"] += result == "deficient"
        if check.due_date >= today:
            continue  # recent: awaiting review
        returned = n % 29 == 5
        review = checks.review(
            session,
            reviewer,
            check,
            decision="returned" if returned else "accepted",
            comment="証跡の日付を確認してください。" if returned else None,
        )
        review.reviewed_at = attestation.attested_at + timedelta(days=2)
        counts["returned" if returned else "accepted"] += 1
    session.flush()
    return counts


def _demo_courses(session: Session, actor, start: date):
    """The annual privacy training and the confidentiality pledge, effective from `start`."""
    from auditapp.services import training

    course = training.create_course(
        session,
        actor,
        {
            "code": "PI-TRAINING",
            "title_ja": "個人情報保護研修",
            "title_en": "Personal data protection training",
            "kind": "training",
            "description": "個人データの取扱いに関する留意事項（年1回）。",
            "recurrence_months": 12,
            "new_hire_grace_days": 30,
            "due_soon_days": 30,
            "certificate_required": True,
            "score_required": True,
            "pass_mark": 70,
            "control_codes": "HUM-01 HUM-02",
            "audience": "all",
        },
        start,
    )
    pledge = training.create_course(
        session,
        actor,
        {
            "code": "NDA-PLEDGE",
            "title_ja": "秘密保持誓約",
            "title_en": "Confidentiality pledge",
            "kind": "acknowledgement",
            "ack_text": "私は、業務上知り得た個人情報その他の秘密情報を、在職中及び退職後も、"
            "正当な理由なく第三者に開示・漏えいし、又は目的外に利用しません。",
            "recurrence_months": 12,
            "new_hire_grace_days": 14,
            "due_soon_days": 30,
            "control_codes": "HUM-03 HUM-04",
            "audience": "all",
        },
        start,
    )
    return course, pledge


def _certificate(session: Session, store, actor, row, person, course, day, retention_years):
    """A completion's certificate (a small PDF) attached in the demo's one transaction."""
    blob = store.put_stream([_pdf(f"certificate {course.code} {person.employee_id} {day}")])
    target = evidence.resolve(session, "completion", str(row.id))
    evidence.record_upload(
        session,
        actor,
        evidence.UploadPlan(
            targets=[target], description="修了証", valid_until=None, actor_label="demo"
        ),
        blob,
        filetypes.BY_EXTENSION[".pdf"],
        f"certificate_{person.employee_id}.pdf",
        retention_years=retention_years,
        today=day,
    )


def training_history(session: Session, actor, store, *, today: date, retention_years: int) -> dict:
    """The annual privacy training (certificate required) and the confidentiality pledge,
    with about two years of completions; a few people are overdue or never started."""
    from auditapp.services import training

    course, pledge = _demo_courses(session, actor, today - timedelta(days=800))
    people = session.scalars(
        select(User).where(User.active.is_(True), User.hired_on.is_not(None)).order_by(User.id)
    ).all()
    counts = {"completions": 0}
    for n, person in enumerate(people):
        for years_ago in (1, 0):
            day = date(today.year - years_ago, 6, 1 + n % 25)
            if day > today or day < person.hired_on or (years_ago == 0 and n % 7 == 3):
                continue  # a few people are behind this year
            plan = training.plan_completion(
                session,
                actor,
                course,
                person,
                completed_on=day,
                score=60 + (n * 7) % 41,
                agreed=False,
                has_certificate=True,
                today=today,
            )
            row = training.record_completion(session, actor, plan, source="import")
            _certificate(session, store, actor, row, person, course, today, retention_years)
            counts["completions"] += 1
            if n % 11 != 5:
                plan = training.plan_completion(
                    session,
                    actor,
                    pledge,
                    person,
                    completed_on=day,
                    score=None,
                    agreed=True,
                    has_certificate=False,
                    today=today,
                )
                training.record_completion(session, actor, plan, source="self")
                counts["completions"] += 1
    return counts


def _scale_rows(owners: list, base: int, count: int, start: date) -> list[dict]:
    """The control rows of synthetic monthly controls SCALE-<base+1> … <base+count>."""
    from auditapp.services.catalog import CATEGORIES

    text = {"ja": "合成された管理策（ベンチマーク用）", "en": "Synthetic control (benchmark)"}
    rows = []
    for i in range(base, base + count):
        code = f"SCALE-{i + 1:04d}"
        content = {
            "id": code,
            "category": CATEGORIES[i % len(CATEGORIES)].id,
            "title": text,
            "requirement": text,
            "references": {"policy": [], "guideline": [], "act": []},
            "frequency": "monthly",
            "methods": {"standard": text, "sme": text},
            "evidence_expected": [text],
            "test_procedure": text,
            "evidence_required": False,
            "attributes": {"demo": True},
        }
        rows.append(
            {
                "code": code,
                "category": content["category"],
                "position": 1000 + i,
                "title_ja": f"{text['ja']} {i + 1}",
                "title_en": f"{text['en']} {i + 1}",
                "frequency": "monthly",
                "evidence_required": False,
                "content_json": audit.canonical_json(content),
                "content_hash": audit.canonical_json(content)[:64].ljust(64, "0"),
                "version": 1,
                "source_file": "demo-scale",
                "status": "active",
                "owner_id": owners[i % len(owners)].id,
                "applicable": True,
                "checks_from": start,
                "synced_at": datetime.now(UTC),
            }
        )
    return rows


def _accept_in_bulk(session: Session, past: list, reviewer) -> None:
    """Attest (effective) and accept the given (check id, period end, owner id) in bulk."""
    from sqlalchemy import insert, update

    from auditapp.models import Attestation, Review

    now = datetime.now(UTC)
    label = audit.actor_label(reviewer)
    for chunk in range(0, len(past), 1000):
        part = past[chunk : chunk + 1000]
        session.execute(
            insert(Attestation),
            [
                {
                    "check_id": cid,
                    "sequence": 1,
                    "attester_id": owner,
                    "attester_name": "demo",
                    "result": "effective",
                    "statement": _STATEMENTS["effective"],
                    "attested_at": datetime.combine(end, time(10), tzinfo=UTC),
                    "evidence_json": "[]",
                }
                for cid, end, owner in part
            ],
        )
        ids = {
            cid: aid
            for aid, cid in session.execute(
                select(Attestation.id, Attestation.check_id).where(
                    Attestation.check_id.in_([p[0] for p in part])
                )
            )
        }
        session.execute(
            insert(Review),
            [
                {
                    "check_id": cid,
                    "attestation_id": ids[cid],
                    "reviewer_id": reviewer.id,
                    "reviewer_name": label,
                    "decision": "accepted",
                    "reviewed_at": now,
                }
                for cid, _end, _owner in part
            ],
        )
        session.execute(
            update(Check)
            .where(Check.id.in_([p[0] for p in part]))
            .values(status="accepted")
            .execution_options(synchronize_session=False)
        )


def scale_controls(
    session: Session, actor, *, count: int, years: int, today: date, cfg: checks.CheckSettings
) -> dict:
    """Add `count` synthetic monthly controls (codes SCALE-0001 …) owned by the managers, with
    `years` fiscal years of checks, past ones attested and accepted in bulk — a data set for
    benchmarks. A later `catalog sync` retires them, as it does any control not in the files."""
    from sqlalchemy import insert

    from auditapp.models import Control

    owners = catalog.managers(session)
    reviewer = users.any_admin(session)
    if not owners or reviewer is None:
        raise ValueError("scaling needs managers and an admin: run the demo first")
    first_fy = periods.fiscal_year_of(today, cfg.start_month) - (years - 1)
    start = periods.fiscal_year_bounds(first_fy, cfg.start_month)[0]
    base = len(session.scalars(select(Control.code).where(Control.code.like("SCALE-%"))).all())
    rows = _scale_rows(owners, base, count, start)
    for chunk in range(0, len(rows), 500):
        session.execute(insert(Control), rows[chunk : chunk + 500])
    created = checks.materialize(session, today, cfg, since=start)
    past = session.execute(
        select(Check.id, Check.period_end, Control.owner_id)
        .join(Control)
        .where(Control.source_file == "demo-scale", Check.status == "open", Check.due_date < today)
    ).all()
    _accept_in_bulk(session, past, reviewer)
    audit.record(
        session,
        actor=actor,
        action="demo.scale",
        object_type="organization",
        after={"controls": count, "checks": created, "accepted": len(past)},
    )
    return {"controls": count, "checks": created, "accepted": len(past)}
