"""The object types evidence links to: one explicit table of how to find an object and
who is responsible for it (and the same as a SQL condition for lists)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import String, and_, cast, select
from sqlalchemy.orm import Session

from auditapp.errors import NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Check,
    CheckStatus,
    Completion,
    Control,
    Evidence,
    EvidenceLink,
    Finding,
    FindingStatus,
)
from auditapp.services import inputs

# Linkable objects -----------------------------------------------------------------
# One explicit table of the object types evidence links to: how to find an object and
# who is responsible for it, and the same as a SQL condition for lists. Every type is
# here, so the web, the command line and the scheduler know the same types whatever
# modules they imported.


@dataclass(frozen=True)
class LinkTarget:
    """An object evidence can be attached to, with the people responsible for it.

    `locked` says why nothing more may be attached (a message), or is None: a check
    once attested and a finding once its closure was submitted keep the evidence that
    was attested or reviewed (access.may_attach).
    """

    object_type: str
    object_id: str
    label: str
    owner_ids: frozenset[int]
    locked: object = None


@dataclass(frozen=True)
class LinkType:
    """How to resolve an object of one type, and "owned by user X" as a SQL condition on
    EvidenceLink (for the library's visibility filter)."""

    resolve: Callable[..., LinkTarget | None]  # (session, object_id, *, for_update=False)
    owned_by: Callable[[int], object]


def _control_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    control = session.scalar(select(Control).where(Control.code == object_id.upper()))
    if control is None:
        return None
    owners = frozenset({control.owner_id} if control.owner_id else set())
    return LinkTarget("control", control.code, f"{control.code} {control.title_ja}", owners)


def _control_owned_by(user_id: int):
    return and_(
        EvidenceLink.object_type == "control",
        EvidenceLink.object_id.in_(select(Control.code).where(Control.owner_id == user_id)),
    )


def _check_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    check = _get(session, Check, object_id, for_update)
    if check is None:
        return None
    owners = {check.control.owner_id} if check.control.owner_id else set()
    label = f"{check.control.code} {check.period_key}"
    locked = None
    if check.status in (CheckStatus.ATTESTED, CheckStatus.ACCEPTED):
        locked = _l(
            "check %(label)s has been attested: its evidence is locked with the attestation "
            "(attach new evidence to the control or to a later check)",
            label=label,
        )
    return LinkTarget("check", str(check.id), label, frozenset(owners), locked)


def _check_owned_by(user_id: int):
    owned = (
        select(cast(Check.id, String))
        .join(Control, Control.id == Check.control_id)
        .where(Control.owner_id == user_id)
    )
    return and_(EvidenceLink.object_type == "check", EvidenceLink.object_id.in_(owned))


def _finding_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    finding = _get(session, Finding, object_id, for_update)
    if finding is None:
        return None
    owners = {finding.owner_id} | (
        {finding.control.owner_id} if finding.control.owner_id else set()
    )
    label = f"{finding.control.code} #{finding.id}"
    locked = None
    if finding.status != FindingStatus.OPEN:
        locked = _l(
            "finding %(label)s was submitted for closure: its evidence is locked "
            "(more can be attached if the closure is returned)",
            label=label,
        )
    return LinkTarget("finding", str(finding.id), label, frozenset(owners), locked)


def _finding_owned_by(user_id: int):
    owned = select(cast(Finding.id, String)).where(Finding.owner_id == user_id)
    return and_(EvidenceLink.object_type == "finding", EvidenceLink.object_id.in_(owned))


def _completion_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    row = _get(session, Completion, object_id, for_update)
    if row is None:
        return None
    return LinkTarget(
        "completion",
        str(row.id),
        f"{row.course.code} {row.user.name} {row.completed_on}",
        frozenset({row.user_id}),
    )


def _completion_owned_by(user_id: int):
    owned = select(cast(Completion.id, String)).where(Completion.user_id == user_id)
    return and_(EvidenceLink.object_type == "completion", EvidenceLink.object_id.in_(owned))


def _get(session: Session, model, object_id: str, for_update: bool):
    """The row with this integer key, or None (also for text or numbers past any key).

    `for_update` re-reads the row and locks it until the transaction ends (PostgreSQL;
    SQLite's writing transaction already excludes other writers), so an attestation or a
    closure cannot land between the lock check and the evidence row.
    """
    if not object_id.isdigit() or len(object_id) > 18:
        return None
    key = int(object_id)
    if not for_update:
        return session.get(model, key)
    # The row alone (its eager joins cannot be locked on PostgreSQL), then fresh values.
    session.execute(select(model.id).where(model.id == key).with_for_update())
    return session.get(model, key, populate_existing=True)


LINK_TYPES: dict[str, LinkType] = {
    "control": LinkType(_control_target, _control_owned_by),
    "check": LinkType(_check_target, _check_owned_by),
    "finding": LinkType(_finding_target, _finding_owned_by),
    "completion": LinkType(_completion_target, _completion_owned_by),
}


def link_types() -> list[str]:
    """The object types evidence can be linked to."""
    return sorted(LINK_TYPES)


def parse_link(value: str) -> tuple[str, str]:
    """'control:ORG-01' → ('control', 'ORG-01'); InvalidInput naming the known types."""
    kind, sep, ident = (value or "").strip().partition(":")
    kind = kind.lower()
    if not sep or not ident.strip() or kind not in LINK_TYPES:
        raise inputs.fail(
            "link",
            _l(
                "write the link as TYPE:ID with TYPE one of %(types)s",
                types=", ".join(link_types()),
            ),
        )
    return kind, ident.strip()[:40]


def resolve(session: Session, kind: str, ident: str, *, for_update: bool = False) -> LinkTarget:
    """The linked object, or NotFound; `for_update` locks its row (see `_get`)."""
    target = LINK_TYPES[kind].resolve(session, ident, for_update=for_update)
    if target is None:
        raise NotFound(_l("%(kind)s %(id)s was not found", kind=kind, id=ident))
    return target


def link_targets(session: Session, item: Evidence) -> Iterator[LinkTarget]:
    """The objects an item is linked to that still exist (resolved one by one, lazily)."""
    for link in item.links:
        link_type = LINK_TYPES.get(link.object_type)
        target = link_type.resolve(session, link.object_id) if link_type else None
        if target is not None:
            yield target
