"""Reminders: which messages are due today, in each recipient's language, sent once.

Kinds: preparation notice (a lead before the period ends), due in 3 days, due today,
overdue (weekly), returned for rework, finding due, finding overdue (weekly). Each is
sent at most once per object, recipient and cycle (a SentReminder row, written only
after the message went out), so a failed send is retried on the next run and a
successful one is never repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from auditapp.models import Check, CheckStatus, Finding, FindingStatus, SentReminder, User
from auditapp.services.checks import OPEN_STATES


@dataclass(frozen=True)
class ReminderSettings:
    """How early and how often to remind."""

    preparation_lead_days: int = 14
    due_soon_days: int = 3


@dataclass(frozen=True)
class Reminder:
    """One message to send (not yet sent)."""

    kind: str
    object_type: str
    object_id: int
    recipient: User
    cycle: str
    check: Check | None = None
    finding: Finding | None = None
    courses: tuple = ()  # (course, due_on) pairs for training reminders

    @property
    def key(self) -> str:
        """A stable identity of this message (for Message-ID and de-duplication)."""
        return f"{self.kind}:{self.object_type}:{self.object_id}:{self.recipient.id}:{self.cycle}"


# What identifies a reminder already sent (the columns of its unique key).
_SENT_KEY = (
    SentReminder.kind,
    SentReminder.object_type,
    SentReminder.object_id,
    SentReminder.recipient_id,
    SentReminder.cycle,
)


def _week(today: date, due: date) -> str:
    """The overdue week: w0 for the 7 days after the due date, w1 for the next 7, ..."""
    return f"w{((today - due).days - 1) // 7}"


def _check_reminders(check: Check, today: date, cfg: ReminderSettings) -> list[tuple[str, str]]:
    """(kind, cycle) of every reminder this check calls for today."""
    due = check.due_date
    found = []
    if check.status == CheckStatus.RETURNED and check.reviews:
        found.append(("returned", f"review{check.reviews[-1].id}"))
    if check.period_start <= today <= due and today >= check.period_end - timedelta(
        days=cfg.preparation_lead_days
    ):
        found.append(("preparation", check.period_key))
    if due - timedelta(days=cfg.due_soon_days) <= today < due:
        found.append(("due_soon", due.isoformat()))
    if today == due:
        found.append(("due_today", due.isoformat()))
    if today > due:
        found.append(("overdue", _week(today, due)))
    return found


def pending(session: Session, today: date, cfg: ReminderSettings) -> list[Reminder]:
    """Every reminder due today that has not been sent yet."""
    horizon = today + timedelta(days=cfg.preparation_lead_days)
    checks = (
        session.scalars(
            select(Check).where(
                Check.status.in_(OPEN_STATES),
                Check.period_end <= horizon,
                Check.period_start <= today,
            )
        )
        .unique()
        .all()
    )
    findings = (
        session.scalars(
            select(Finding).where(
                Finding.status == FindingStatus.OPEN.value,
                Finding.due_date <= today + timedelta(days=cfg.due_soon_days),
            )
        )
        .unique()
        .all()
    )
    candidates: list[Reminder] = []
    for check in checks:
        owner = check.control.owner
        if owner is None or not owner.active:
            continue
        for kind, cycle in _check_reminders(check, today, cfg):
            candidates.append(Reminder(kind, "check", check.id, owner, cycle, check=check))
    for finding in findings:
        owner = finding.owner
        if not owner.active:
            continue
        if today > finding.due_date:
            kind, cycle = "finding_overdue", _week(today, finding.due_date)
        else:
            kind, cycle = "finding_due", finding.due_date.isoformat()
        candidates.append(Reminder(kind, "finding", finding.id, owner, cycle, finding=finding))
    if not candidates:
        return []
    sent = set()
    ids = {(c.object_type, str(c.object_id)) for c in candidates}
    for object_type in {t for t, _i in ids}:
        object_ids = sorted(i for t, i in ids if t == object_type)
        for start in range(0, len(object_ids), 900):
            sent.update(
                session.execute(
                    select(*_SENT_KEY).where(
                        SentReminder.object_type == object_type,
                        SentReminder.object_id.in_(object_ids[start : start + 900]),
                    )
                ).all()
            )
    return [
        c
        for c in candidates
        if (c.kind, c.object_type, str(c.object_id), c.recipient.id, c.cycle) not in sent
    ]


def pending_training(session: Session, today: date) -> list[Reminder]:
    """Training reminders due today: due soon, overdue (weekly), and a welcome with the
    deadlines for people hired in the last 30 days. Not yet sent ones only."""
    from auditapp.services import training

    people = {u.id: u for u in session.scalars(select(User).where(User.active.is_(True)))}
    courses = {c.id: c for c in training.list_courses(session)}
    candidates: list[Reminder] = []
    welcome: dict[int, list] = {}
    for row in training.status_rows(session, today):
        person = people.get(row.user_id)
        course = courses.get(row.course_id)
        if person is None or course is None:
            continue
        due = (
            row.due_on
            if isinstance(row.due_on, date) or row.due_on is None
            else date.fromisoformat(str(row.due_on)[:10])
        )
        if row.status == "due_soon" and due is not None:
            candidates.append(
                Reminder(
                    "training_due_soon",
                    "course",
                    course.id,
                    person,
                    f"{person.id}:{due.isoformat()}",
                    courses=((course, due),),
                )
            )
        elif row.status == "overdue" and due is not None:
            candidates.append(
                Reminder(
                    "training_overdue",
                    "course",
                    course.id,
                    person,
                    f"{person.id}:{_week(today, due)}",
                    courses=((course, due),),
                )
            )
        if (
            row.completed_on is None
            and row.status != "exempt"
            and person.hired_on
            and today - timedelta(days=30) <= person.hired_on <= today
        ):
            welcome.setdefault(person.id, []).append((course, due))
    for person_id, items in welcome.items():
        candidates.append(
            Reminder(
                "training_welcome",
                "user",
                person_id,
                people[person_id],
                "welcome",
                courses=tuple(items),
            )
        )
    if not candidates:
        return []
    sent = set(
        session.execute(
            select(*_SENT_KEY).where(
                SentReminder.kind.in_(("training_due_soon", "training_overdue", "training_welcome"))
            )
        ).all()
    )
    return [
        c
        for c in candidates
        if (c.kind, c.object_type, str(c.object_id), c.recipient.id, c.cycle) not in sent
    ]


def record_sent(session: Session, reminder: Reminder, channel: str) -> None:
    """Remember that a reminder went out (so it is never sent again)."""
    _record(session, _identity(reminder), channel)


def _identity(reminder: Reminder) -> tuple[str, str, str, int, str]:
    return (
        reminder.kind,
        reminder.object_type,
        str(reminder.object_id),
        reminder.recipient.id,
        reminder.cycle,
    )


def _record(session: Session, identity: tuple, channel: str) -> None:
    kind, object_type, object_id, recipient_id, cycle = identity
    session.add(
        SentReminder(
            kind=kind,
            object_type=object_type,
            object_id=object_id,
            recipient_id=recipient_id,
            cycle=cycle,
            channel=channel[:200],
        )
    )
    session.flush()


def render(reminder: Reminder, *, language: str, base_url: str) -> tuple[str, str]:
    """Subject and body of a reminder in the given language (needs an app context)."""
    base = base_url.rstrip("/")
    with force_locale(language):
        if reminder.courses:
            url = f"{base}/training/"
            titles = [
                (c.title("en" if language == "en" else "ja"), due) for c, due in reminder.courses
            ]
            subject = {
                "training_due_soon": _(
                    "[auditapp] Training due soon: %(title)s", title=titles[0][0]
                ),
                "training_overdue": _("[auditapp] Training overdue: %(title)s", title=titles[0][0]),
                "training_welcome": _("[auditapp] Welcome: your training and pledges"),
            }[reminder.kind]
            lines = [
                _("%(title)s: due by %(due)s", title=t, due=due.isoformat() if due else "-")
                for t, due in titles
            ]
        elif reminder.check is not None:
            check = reminder.check
            control = check.control
            title = control.title("en" if language == "en" else "ja")
            url = f"{base}/checks/{check.id}"
            facts = {
                "code": control.code,
                "title": title,
                "period": check.period_key,
                "due": check.due_date.isoformat(),
            }
            subject = {
                "preparation": _("[auditapp] Check coming up: %(code)s %(period)s", **facts),
                "due_soon": _("[auditapp] Due in 3 days: %(code)s %(period)s", **facts),
                "due_today": _("[auditapp] Due today: %(code)s %(period)s", **facts),
                "overdue": _("[auditapp] Overdue: %(code)s %(period)s", **facts),
                "returned": _("[auditapp] Returned for rework: %(code)s %(period)s", **facts),
            }[reminder.kind]
            lines = [
                _("Control: %(code)s %(title)s", **facts),
                _("Period: %(period)s", **facts),
                _("Due date: %(due)s", **facts),
            ]
            if reminder.kind == "returned" and check.reviews:
                lines.append(
                    _("Reviewer's comment: %(comment)s", comment=check.reviews[-1].comment or "")
                )
        else:
            finding = reminder.finding
            url = f"{base}/findings/{finding.id}"
            facts = {
                "code": finding.control.code,
                "id": finding.id,
                "due": finding.due_date.isoformat(),
            }
            subject = {
                "finding_due": _("[auditapp] Finding due soon: %(code)s #%(id)s", **facts),
                "finding_overdue": _("[auditapp] Finding overdue: %(code)s #%(id)s", **facts),
            }[reminder.kind]
            lines = [
                _("Finding #%(id)s for %(code)s", **facts),
                _("Due date: %(due)s", **facts),
                finding.description,
            ]
        body = "\n".join(
            [
                _("Dear %(name)s,", name=reminder.recipient.name),
                "",
                *lines,
                "",
                _("Open it here: %(url)s", url=url),
                "",
                _("This message was sent by auditapp. Please do not reply."),
            ]
        )
    # One line whatever the data holds (a title saved with a line break before such input
    # was refused must not make every reminder of its course fail).
    return " ".join(subject.split()), body


def deliver(
    session: Session, mailer, items: list[Reminder], *, default_language: str, base_url: str
) -> tuple[int, list[str]]:
    """Send reminders and record each one that went out, in its own short transaction.

    Messages are rendered first, then the transaction is ended so nothing is held open
    while talking to the mail server. A message that fails (server down or refusing, an
    address the mailer will not use) is not recorded, so the next run retries it.
    Returns the number sent and a description of each failure.
    """
    from auditapp import database
    from auditapp.mailer import MailError, Message

    prepared, failed = [], []
    for item in items:
        language = item.recipient.language or default_language
        subject, body = render(item, language=language, base_url=base_url)
        try:
            message = Message(item.recipient.email, subject, body, item.key)
        except ValueError as exc:
            failed.append(f"{item.key}: {exc}")
            continue
        prepared.append((item.key, _identity(item), message))
    session.rollback()
    sent = 0
    # Records go through a session of their own: committing the caller's session once per
    # message expired every object it had loaded each time (bench/checks.py: 100 s -> 22 s).
    with Session(bind=session.get_bind()) as writer:
        for key, identity, message in prepared:
            try:
                channel = mailer.send(message)
            except MailError as exc:
                failed.append(f"{key}: {exc}")
                continue
            with database.writing():
                _record(writer, identity, channel)
                writer.commit()
            sent += 1
    return sent, failed


def for_department(session: Session, department_id: int, today: date) -> list[Reminder]:
    """A manager's reminder to everyone of a department who is overdue or due soon, at most
    once a day per person and course."""
    from auditapp.services import training

    courses = {c.id: c for c in training.list_courses(session)}
    people = {
        u.id: u
        for u in session.scalars(
            select(User).where(User.department_id == department_id, User.active.is_(True))
        )
    }
    items = []
    for row in training.status_rows(
        session, today, training.StatusFilter(department_id=department_id)
    ):
        if row.status not in ("overdue", "due_soon") or row.user_id not in people:
            continue
        kind = "training_overdue" if row.status == "overdue" else "training_due_soon"
        due = (
            row.due_on
            if isinstance(row.due_on, date) or row.due_on is None
            else date.fromisoformat(str(row.due_on)[:10])
        )
        items.append(
            Reminder(
                kind,
                "course",
                row.course_id,
                people[row.user_id],
                f"manual:{today.isoformat()}",
                courses=((courses[row.course_id], due),),
            )
        )
    sent = set(
        session.execute(
            select(SentReminder.object_id, SentReminder.recipient_id).where(
                SentReminder.cycle == f"manual:{today.isoformat()}"
            )
        ).all()
    )
    return [i for i in items if (str(i.object_id), i.recipient.id) not in sent]
