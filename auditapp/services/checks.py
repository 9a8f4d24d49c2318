"""Periodic checks: generation exactly once per control and period, attestation by the
owner, review by an admin, findings and their closure, overdue marking, lists.

Concurrency: generation relies on UNIQUE(control_id, period_key) and inserts only
what is missing, ignoring conflicts, so two processes generating at once create nothing
twice. Submissions and reviews move a check's status with a conditional UPDATE, so of
two concurrent submissions exactly one wins and the other gets a Conflict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.errors import Conflict, Forbidden, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Attestation,
    Check,
    CheckStatus,
    Control,
    ControlStatus,
    Decision,
    Evidence,
    EvidenceLink,
    EvidenceStatus,
    Finding,
    FindingStatus,
    Result,
    Review,
    Risk,
    User,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs, periods, training

MAX_STATEMENT = 4000
MAX_TEXT = 4000
OPEN_STATES = (CheckStatus.OPEN.value, CheckStatus.RETURNED.value)


@dataclass(frozen=True)
class CheckSettings:
    """The configuration the check logic needs, as plain values."""

    start_month: int = 4
    grace_days: int = 14

    @classmethod
    def from_config(cls, config) -> CheckSettings:
        return cls(
            start_month=int(config["FISCAL_YEAR_START_MONTH"]), grace_days=int(config["GRACE_DAYS"])
        )


# Figures recorded with an attestation ----------------------------------------------------


def figures_for(session: Session, control: Control, today: date) -> dict:
    """The live figures for a control, shown on its check pages and recorded when
    attesting: today the training completion rates of the courses that name it."""
    return training.figures_for_control(session, control, today) or {}


# Generation ------------------------------------------------------------------------------


def _eligible_controls(session: Session) -> list[Control]:
    return list(
        session.scalars(
            select(Control)
            .where(
                Control.status == ControlStatus.ACTIVE.value,
                Control.applicable.is_(True),
                Control.owner_id.is_not(None),
            )
            .order_by(Control.id)
        )
    )


def materialize(
    session: Session, today: date, cfg: CheckSettings, since: date | None = None
) -> int:
    """Create the missing checks up to the next period for every applicable, owned, active
    control; returns how many were created. Safe to run any number of times.

    Periods start no earlier than the previous fiscal year (so missed runs are caught up)
    and not before the control was first owned.
    """
    if since is None:
        since = periods.fiscal_year_bounds(
            periods.fiscal_year_of(today, cfg.start_month) - 1, cfg.start_month
        )[0]
    controls = _eligible_controls(session)
    if not controls:
        return 0
    existing = set(
        session.execute(
            select(Check.control_id, Check.period_key).where(Check.period_end >= since)
        ).all()
    )
    rows = []
    for control in controls:
        frequency = control.effective_frequency
        first_day = max(since, control.checks_from or since)
        period = periods.period_for(first_day, frequency, cfg.start_month)
        last = periods.next_period(
            periods.period_for(today, frequency, cfg.start_month), cfg.start_month
        )
        while period.start <= last.start:
            if (control.id, period.key) not in existing:
                rows.append(
                    {
                        "control_id": control.id,
                        "period_key": period.key,
                        "period_start": period.start,
                        "period_end": period.end,
                        "due_date": periods.due_date(period, cfg.grace_days),
                        "fiscal_year": period.fiscal_year,
                        "frequency": frequency,
                        "control_version": control.version,
                        "control_content_hash": control.content_hash,
                        "status": CheckStatus.OPEN.value,
                        "created_at": utcnow(),
                    }
                )
            period = periods.next_period(period, cfg.start_month)
    return _insert_ignoring_duplicates(session, rows)


def _insert_ignoring_duplicates(session: Session, rows: list[dict], chunk: int = 2000) -> int:
    """INSERT ... ON CONFLICT DO NOTHING, one statement with many parameter sets; returns
    the rows actually inserted (RETURNING lists only those; rowcount is not reliable)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(Check)
        .on_conflict_do_nothing(index_elements=["control_id", "period_key"])
        .returning(Check.id)
    )
    created = 0
    for i in range(0, len(rows), chunk):
        created += len(session.execute(stmt, rows[i : i + chunk]).all())
    return created


def _mark(session: Session, model, still_open, today: date) -> int:
    """Set overdue_marked_on (once) on the rows still open past their due date."""
    moved = session.execute(
        update(model)
        .where(still_open, model.due_date < today, model.overdue_marked_on.is_(None))
        .values(overdue_marked_on=today)
        .execution_options(synchronize_session=False)
    ).rowcount
    return moved or 0


def mark_overdue(session: Session, actor, today: date) -> tuple[int, int]:
    """Mark checks and findings that passed their due date (once); returns both counts."""
    checks = _mark(session, Check, Check.status.in_(OPEN_STATES), today)
    findings = _mark(session, Finding, Finding.status == FindingStatus.OPEN.value, today)
    if checks or findings:
        audit.record(
            session,
            actor=actor,
            action="check.overdue",
            object_type="check",
            after={"day": today, "checks": checks, "findings": findings},
        )
    return checks, findings


# Access (the rules are in access.py) ----------------------------------------------------


def get_check(session: Session, actor, check_id: int) -> Check:
    """A check the actor may see, or NotFound (also when it exists but is not theirs)."""
    check = session.get(Check, check_id)
    if check is None or not access.can_view_check(actor, check):
        raise NotFound(_l("No such check."))
    return check


def get_finding(session: Session, actor, finding_id: int) -> Finding:
    """A finding the actor may see, or NotFound."""
    finding = session.get(Finding, finding_id)
    if finding is None or not access.can_view_finding(actor, finding):
        raise NotFound(_l("No such finding."))
    return finding


# Attestation and review ---------------------------------------------------------------


def attached_evidence(session: Session, object_type: str, object_id: int) -> list[Evidence]:
    """Current, active evidence linked to a check or finding."""
    return list(
        session.scalars(
            select(Evidence)
            .join(EvidenceLink)
            .where(
                EvidenceLink.object_type == object_type,
                EvidenceLink.object_id == str(object_id),
                Evidence.status == EvidenceStatus.ACTIVE.value,
                Evidence.superseded_at.is_(None),
            )
            .order_by(Evidence.id)
        )
    )


def _finding_fields(data: dict, today: date) -> dict:
    errors: dict = {}
    values: dict = {}
    for field, limit in (("description", MAX_TEXT), ("remediation_plan", MAX_TEXT)):
        try:
            values[field] = inputs.text(data.get(field), field, max_len=limit, multiline=True)
        except InvalidInput as exc:
            errors.update(exc.errors)
    risk = (data.get("risk") or "").strip().lower()
    if risk not in {r.value for r in Risk}:
        errors["risk"] = _l("choose low, medium, high or critical")
    values["risk"] = risk
    try:
        due = inputs.parse_date(data.get("due_date"), "due_date", required=True)
        if due is not None and due < today:
            errors["due_date"] = _l("must not be in the past")
        values["due_date"] = due
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput.from_errors(errors)
    return values


def _check_may_attest(actor: User, check: Check, today: date) -> None:
    """Raise the domain error that says why the actor may not attest the check today."""
    blocker = access.attest_blocker(actor, check, today)
    if blocker == "not_owner":
        raise NotFound(_l("No such check."))
    if blocker == "not_open":
        raise Conflict(_l("This check has already been attested."))
    if blocker == "not_started":
        raise InvalidInput(
            _l("This check opens on %(day)s.", day=check.period_start.isoformat()),
            {"result": _l("the period has not started")},
        )


@dataclass
class _AttestationInput:
    """A checked attestation: the statement, the evidence in force, the finding to open."""

    statement: str | None
    evidence: list[Evidence]
    finding: dict | None


def _attestation_input(
    session: Session, check: Check, result: str, statement: str | None, finding, today: date
) -> _AttestationInput:
    """Check what the owner submitted; raise InvalidInput naming every bad field."""
    errors: dict = {}
    if result not in {r.value for r in Result}:
        errors["result"] = _l("choose effective, deficient or not applicable")
    try:
        text = inputs.text(statement, "statement", max_len=MAX_STATEMENT, multiline=True)
    except InvalidInput as exc:
        errors.update(exc.errors)
        text = None
    items = attached_evidence(session, "check", check.id)
    if result == Result.EFFECTIVE and check.control.evidence_required and not items:
        errors["evidence"] = _l(
            "this control needs evidence for an effective result; attach it first"
        )
    finding_values = None
    if result == Result.DEFICIENT:
        try:
            finding_values = _finding_fields(finding or {}, today)
        except InvalidInput as exc:
            errors.update({f"finding_{k}": v for k, v in exc.errors.items()})
    if errors:
        raise InvalidInput.from_errors(errors)
    return _AttestationInput(text, items, finding_values)


def attest(
    session: Session,
    actor: User,
    check: Check,
    *,
    result: str,
    statement: str | None,
    finding: dict | None,
    today: date,
) -> Attestation:
    """The owner attests a check: effective, deficient (opens a finding) or not applicable.

    The attestation is locked once submitted: it keeps the attester's name, the time and
    the SHA-256 of each attached evidence item, and only a return lets a new one follow.
    """
    _check_may_attest(actor, check, today)
    given = _attestation_input(session, check, result, statement, finding, today)
    moved = session.execute(
        update(Check)
        .where(Check.id == check.id, Check.status.in_(OPEN_STATES))
        .values(status=CheckStatus.ATTESTED.value)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise Conflict(_l("Someone else attested this check a moment ago; reload to see it."))
    figures = figures_for(session, check.control, today)
    attestation = Attestation(
        check_id=check.id,
        sequence=len(check.attestations) + 1,
        attester_id=actor.id,
        attester_name=audit.actor_label(actor),
        result=result,
        statement=given.statement,
        attested_at=utcnow(),
        evidence_json=json.dumps(
            [{"id": e.id, "sha256": e.sha256, "filename": e.filename} for e in given.evidence],
            ensure_ascii=False,
        ),
        figures_json=json.dumps(figures, ensure_ascii=False, default=str) if figures else None,
    )
    session.add(attestation)
    session.flush()
    session.refresh(check)
    audit.record(
        session,
        actor=actor,
        action="check.attest",
        object_type="check",
        object_id=check.id,
        after={
            "result": result,
            "statement": given.statement,
            "evidence": [e.sha256 for e in given.evidence],
            "figures": figures,
        },
    )
    if given.finding is not None:
        open_finding(session, actor, check.control, check, given.finding)
    return attestation


def _decision_comment(decision: str, comment: str | None) -> str | None:
    """A reviewer's decision (accepted or returned) and its comment, required to return;
    InvalidInput naming both fields when both are wrong."""
    errors: dict = {}
    if decision not in {d.value for d in Decision}:
        errors["decision"] = _l("choose accept or return")
    try:
        text = inputs.text(
            comment,
            "comment",
            max_len=MAX_TEXT,
            required=decision == Decision.RETURNED,
            multiline=True,
        )
    except InvalidInput as exc:
        errors.update(exc.errors)
        text = None
    if errors:
        raise InvalidInput.from_errors(errors)
    return text


def review(
    session: Session, actor: User, check: Check, *, decision: str, comment: str | None
) -> Review:
    """An admin accepts or returns an attested check; never the attester."""
    blocker = access.review_blocker(actor, check)
    if blocker == "not_attested":
        raise Conflict(_l("Only an attested check can be reviewed."))
    if blocker == "not_admin":
        raise Forbidden(_l("Only an admin reviews attestations."))
    if blocker == "own_attestation":
        raise Forbidden(_l("You cannot review your own attestation."))
    attestation = check.current_attestation
    text = _decision_comment(decision, comment)
    new_status = (
        CheckStatus.ACCEPTED if decision == Decision.ACCEPTED else CheckStatus.RETURNED
    ).value
    moved = session.execute(
        update(Check)
        .where(Check.id == check.id, Check.status == CheckStatus.ATTESTED.value)
        .values(status=new_status)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise Conflict(_l("Someone else reviewed this check a moment ago; reload to see it."))
    row = Review(
        check_id=check.id,
        attestation_id=attestation.id,
        reviewer_id=actor.id,
        reviewer_name=audit.actor_label(actor),
        decision=decision,
        comment=text,
        reviewed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    session.refresh(check)
    audit.record(
        session,
        actor=actor,
        action=f"check.{decision}",
        object_type="check",
        object_id=check.id,
        after={"decision": decision, "comment": text, "attestation": attestation.id},
    )
    return row


# Findings -----------------------------------------------------------------------------


def open_finding(
    session: Session, actor, control: Control, check: Check | None, values: dict
) -> Finding:
    """Open a finding for a control (from a deficient check); its owner is the control's."""
    finding = Finding(
        control_id=control.id,
        check_id=check.id if check else None,
        owner_id=control.owner_id or actor.id,
        status=FindingStatus.OPEN.value,
        created_by_id=access.person_id(actor),
        **values,
    )
    session.add(finding)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="finding.open",
        object_type="finding",
        object_id=finding.id,
        after=values | {"control": control.code, "check": check.id if check else None},
    )
    return finding


def submit_closure(session: Session, actor: User, finding: Finding, note: str | None) -> Finding:
    """The owner asks to close a finding: a note and evidence are required; who asked is
    kept, since they may not decide on it (access.may_review_closure)."""
    blocker = access.close_blocker(actor, finding)
    if blocker == "not_owner":
        raise NotFound(_l("No such finding."))
    if blocker == "not_open":
        raise Conflict(_l("This finding is not open."))
    errors: dict = {}
    try:
        text = inputs.text(note, "closing_note", max_len=MAX_TEXT, multiline=True)
    except InvalidInput as exc:
        errors.update(exc.errors)
        text = None
    items = attached_evidence(session, "finding", finding.id)
    if not items:
        errors["evidence"] = _l("attach evidence of the fix before asking to close")
    if errors:
        raise InvalidInput.from_errors(errors)
    finding.status = FindingStatus.CLOSURE_SUBMITTED.value
    finding.closing_note = text
    finding.closure_submitted_at = utcnow()
    finding.closure_submitted_by_id = actor.id
    finding.closure_evidence_json = json.dumps(
        [{"id": e.id, "sha256": e.sha256, "filename": e.filename} for e in items],
        ensure_ascii=False,
    )
    audit.record(
        session,
        actor=actor,
        action="finding.closure_submitted",
        object_type="finding",
        object_id=finding.id,
        after={"note": text, "evidence": [e.sha256 for e in items]},
    )
    return finding


def review_closure(
    session: Session, actor: User, finding: Finding, *, decision: str, comment: str | None
) -> Finding:
    """An admin who neither asked to close the finding nor owns it closes it or sends it
    back (four eyes)."""
    blocker = access.closure_review_blocker(actor, finding)
    if blocker == "not_submitted":
        raise Conflict(_l("No closure is waiting for review."))
    if blocker == "not_admin":
        raise Forbidden(_l("Only an admin reviews closures."))
    if blocker == "own_closure":
        raise Forbidden(_l("You cannot review your own closure."))
    text = _decision_comment(decision, comment)
    finding.reviewer_id = actor.id
    finding.review_comment = text
    finding.reviewed_at = utcnow()
    if decision == Decision.ACCEPTED:
        finding.status = FindingStatus.CLOSED.value
        finding.closed_at = utcnow()
    else:
        finding.status = FindingStatus.OPEN.value
    audit.record(
        session,
        actor=actor,
        action=f"finding.closure_{decision}",
        object_type="finding",
        object_id=finding.id,
        after={"decision": decision, "comment": text},
    )
    return finding


# Lists ------------------------------------------------------------------------------


@dataclass
class CheckFilter:
    """Filters for check lists; all optional."""

    fiscal_year: int | None = None
    status: str = ""  # open, attested, accepted, returned, overdue
    owner_id: int | None = None
    category: str = ""
    control_code: str = ""
    period_key: str = ""
    due_before: date | None = None


def _check_query(actor, flt: CheckFilter, today: date):
    stmt = select(Check).join(Control, Control.id == Check.control_id)
    if not access.oversees_all(actor):  # access.can_view_check as SQL
        stmt = stmt.where(Control.owner_id == actor.id)
    if flt.fiscal_year:
        stmt = stmt.where(Check.fiscal_year == flt.fiscal_year)
    if flt.status == "overdue":
        stmt = stmt.where(Check.status.in_(OPEN_STATES), Check.due_date < today)
    elif flt.status:
        stmt = stmt.where(Check.status == flt.status)
    if flt.owner_id:
        stmt = stmt.where(Control.owner_id == flt.owner_id)
    if flt.category:
        stmt = stmt.where(Control.category == flt.category)
    if flt.control_code:
        stmt = stmt.where(Control.code == flt.control_code.upper())
    if flt.period_key:
        stmt = stmt.where(Check.period_key == flt.period_key)
    if flt.due_before:
        stmt = stmt.where(Check.due_date <= flt.due_before)
    return stmt


def search(
    session: Session, actor, flt: CheckFilter, today: date, page: int = 1, page_size: int = 50
) -> tuple[list[Check], int]:
    """One page of checks the actor may see (by due date, then control), and the total."""
    stmt = _check_query(actor, flt, today).order_by(Check.due_date, Control.code)
    return database.paginate(session, stmt, page, page_size)


def iter_checks(session: Session, actor, flt: CheckFilter, today: date, batch: int = 2000):
    """Every matching check, streamed in batches (for CSV output and exports)."""
    stmt = _check_query(actor, flt, today).order_by(Check.due_date, Control.code)
    yield from session.scalars(stmt.execution_options(yield_per=batch))


def findings_of_check(session: Session, check: Check) -> list[Finding]:
    """The findings opened from a check."""
    return list(
        session.scalars(select(Finding).where(Finding.check_id == check.id).order_by(Finding.id))
    )


def history_for_control(session: Session, control: Control, limit: int = 100) -> list[Check]:
    """A control's checks, newest period first."""
    return list(
        session.scalars(
            select(Check)
            .where(Check.control_id == control.id)
            .order_by(Check.period_start.desc())
            .limit(limit)
        )
    )


@dataclass
class FindingFilter:
    """Filters for the findings list."""

    status: str = ""  # open, closure_submitted, closed, overdue
    risk: str = ""
    owner_id: int | None = None


def search_findings(
    session: Session, actor, flt: FindingFilter, today: date, page: int = 1, page_size: int = 50
) -> tuple[list[Finding], int]:
    """One page of findings the actor may see, most urgent first."""
    stmt = select(Finding).join(Control, Control.id == Finding.control_id)
    if not access.oversees_all(actor):  # access.can_view_finding as SQL
        stmt = stmt.where(or_(Finding.owner_id == actor.id, Control.owner_id == actor.id))
    if flt.status == "overdue":
        stmt = stmt.where(Finding.status == FindingStatus.OPEN.value, Finding.due_date < today)
    elif flt.status:
        stmt = stmt.where(Finding.status == flt.status)
    if flt.risk:
        stmt = stmt.where(Finding.risk == flt.risk)
    if flt.owner_id:
        stmt = stmt.where(Finding.owner_id == flt.owner_id)
    return database.paginate(session, stmt.order_by(Finding.due_date, Finding.id), page, page_size)
