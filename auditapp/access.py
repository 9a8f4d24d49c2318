"""Who may do what: every endpoint's allowed roles, and object-level predicates.

This is the one place where permissions are decided. The web layer looks up each
request's endpoint here before the view runs; an endpoint missing from RULES is
refused (and a test walking app.url_map fails), so no route can be added without
stating who may use it. Below RULES, each object-level rule is a named predicate
returning a bool: services call it and raise NotFound or Forbidden, views and templates
call it to show or hide a button, so a rule exists once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from auditapp.models import (
    Check,
    CheckStatus,
    Evidence,
    EvidenceStatus,
    ExportJob,
    Finding,
    FindingStatus,
    Role,
    User,
)

ADMIN = Role.ADMIN
MANAGER = Role.MANAGER
EMPLOYEE = Role.EMPLOYEE
AUDITOR = Role.AUDITOR
ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Rule:
    """Who may use an endpoint: anyone (public) or signed-in people holding one of roles."""

    public: bool = False
    roles: frozenset[Role] = frozenset()


PUBLIC = Rule(public=True)


def roles(*allowed: Role) -> Rule:
    """A rule allowing signed-in people who hold any of the given roles."""
    return Rule(roles=frozenset(allowed))


SIGNED_IN = roles(*ALL_ROLES)

RULES: dict[str, Rule] = {
    "static": PUBLIC,
    "main.healthz": PUBLIC,
    "main.set_language": PUBLIC,
    "auth.login": PUBLIC,
    "auth.logout": SIGNED_IN,
    "auth.change_password": SIGNED_IN,
    "main.index": SIGNED_IN,
    "admin.user_list": roles(ADMIN),
    "admin.user_new": roles(ADMIN),
    "admin.user_edit": roles(ADMIN),
    "admin.user_deactivate": roles(ADMIN),
    "admin.user_reactivate": roles(ADMIN),
    "admin.user_reset_password": roles(ADMIN),
    "admin.user_unlock": roles(ADMIN),
    "admin.department_list": roles(ADMIN),
    "admin.department_edit": roles(ADMIN),
    "audit.event_list": roles(ADMIN, AUDITOR),
    "catalog.control_list": SIGNED_IN,
    "catalog.control_detail": SIGNED_IN,
    "catalog.control_settings": roles(ADMIN),
    "catalog.set_profile": roles(ADMIN),
    # Evidence: object-level rules in services.evidence (can_view, may_attach).
    "evidence.evidence_list": SIGNED_IN,
    "evidence.upload": SIGNED_IN,
    "evidence.evidence_detail": SIGNED_IN,
    "evidence.download": SIGNED_IN,
    "evidence.preview": SIGNED_IN,
    "evidence.withdraw": roles(ADMIN),
    # Checks and findings: object-level rules in services.checks (owner, attester, reviewer).
    "checks.check_list": roles(ADMIN, MANAGER, AUDITOR),
    "checks.check_detail": roles(ADMIN, MANAGER, AUDITOR),
    "checks.attest": roles(MANAGER),
    "checks.review": roles(ADMIN),
    "checks.finding_list": roles(ADMIN, MANAGER, AUDITOR),
    "checks.finding_detail": roles(ADMIN, MANAGER, AUDITOR),
    "checks.finding_close": roles(MANAGER),
    "checks.finding_review": roles(ADMIN),
    "checks.dashboard": roles(ADMIN, AUDITOR),
    # Training: object-level rule may_record_training_for (below).
    "training.mine": SIGNED_IN,
    "training.complete": SIGNED_IN,
    "training.department": roles(ADMIN, MANAGER),
    "training.group_session": roles(ADMIN, MANAGER),
    "training.department_remind": roles(MANAGER),
    "training.organization": roles(ADMIN, AUDITOR),
    "training.organization_csv": roles(ADMIN, AUDITOR),
    "training.course_list": roles(ADMIN),
    "training.course_new": roles(ADMIN),
    "training.course_edit": roles(ADMIN),
    "training.course_retire": roles(ADMIN),
    "training.course_exempt": roles(ADMIN),
    "training.completion_import": roles(ADMIN),
    # Auditor export: the job's owner or an admin (can_see_export).
    "exports.export_list": roles(ADMIN, AUDITOR),
    "exports.create": roles(ADMIN, AUDITOR),
    "exports.export_detail": roles(ADMIN, AUDITOR),
    "exports.status": roles(ADMIN, AUDITOR),
    "exports.download": roles(ADMIN, AUDITOR),
}


def rule_for(endpoint: str | None) -> Rule | None:
    """The rule declared for an endpoint, or None when it has none (refused)."""
    return RULES.get(endpoint or "")


def allowed(user: User | None, rule: Rule) -> bool:
    """True when the (possibly anonymous) user may use an endpoint with this rule."""
    if rule.public:
        return True
    return user is not None and user.has_role(*rule.roles)


def allowed_roles(rule: Rule, role: str) -> bool:
    """True when a person holding just this role may use an endpoint with this rule."""
    return rule.public or Role(role) in rule.roles


# Object-level predicates ------------------------------------------------------------
#
# An actor is a signed-in person (a User) or a string naming a process: the command line
# ("cli:<login>") or the scheduler ("scheduler"). A process acts for the operator who
# runs it, who holds the instance folder and the database anyway, so it may see every
# object and do the organization's housekeeping (attach evidence, open findings, mark
# overdue, purge, grant exemptions). It never makes a person's signed statement: it does
# not attest, review, submit or review a closure, because those record who decided.


def is_person(actor) -> bool:
    """True for a signed-in person; False for a process (command line, scheduler)."""
    return isinstance(actor, User)


def person_id(actor) -> int | None:
    """The person's id for "recorded by" columns; None for a process."""
    return actor.id if is_person(actor) else None


def is_admin(actor) -> bool:
    """A person holding the admin role."""
    return is_person(actor) and actor.has_role(ADMIN)


def is_manager(actor) -> bool:
    """A person holding the manager role (the only people who may own controls)."""
    return is_person(actor) and actor.has_role(MANAGER)


def is_auditor(actor) -> bool:
    """A person holding the auditor role."""
    return is_person(actor) and actor.has_role(AUDITOR)


def may_own_controls(user: User) -> bool:
    """Controls are owned (attested, kept in evidence) by managers."""
    return is_manager(user)


def may_edit_catalog(actor) -> bool:
    """Admins (and processes) change control settings and the organization profile."""
    return not is_person(actor) or is_admin(actor)


def oversees_all(actor) -> bool:
    """Admins, auditors and processes see every check, finding and the audit trail;
    everyone else only their own work."""
    return not is_person(actor) or actor.has_role(ADMIN, AUDITOR)


def owns_control(actor, control) -> bool:
    """The person is the control's owner."""
    return is_person(actor) and control.owner_id == actor.id


# Checks and their attestation and review.


def can_view_check(actor, check: Check) -> bool:
    """Admins and auditors see every check; a manager the checks of controls they own."""
    return oversees_all(actor) or owns_control(actor, check.control)


def attest_blocker(user, check: Check, today: date) -> str | None:
    """Why `user` may not attest `check` today, or None: "not_owner" (only the control's
    owner attests), "not_open" (already attested or accepted; only a return reopens it),
    "not_started" (the period has not begun)."""
    if not owns_control(user, check.control):
        return "not_owner"
    if check.status not in (CheckStatus.OPEN, CheckStatus.RETURNED):
        return "not_open"
    if today < check.period_start:
        return "not_started"
    return None


def may_attest(user, check: Check, today: date) -> bool:
    """The control's owner attests an open (or returned) check once its period began."""
    return attest_blocker(user, check, today) is None


def review_blocker(user, check: Check) -> str | None:
    """Why `user` may not review `check`, or None: "not_attested", "not_admin", or
    "own_attestation" (four eyes: the attester never reviews their own attestation,
    whatever roles they hold)."""
    attestation = check.current_attestation
    if check.status != CheckStatus.ATTESTED or attestation is None:
        return "not_attested"
    if not is_admin(user):
        return "not_admin"
    if attestation.attester_id == user.id:
        return "own_attestation"
    return None


def may_review(user, check: Check) -> bool:
    """An admin other than the attester accepts or returns an attested check."""
    return review_blocker(user, check) is None


# Findings and their closure.


def can_view_finding(actor, finding: Finding) -> bool:
    """Admins and auditors see all findings; a person the findings they own and those of
    the controls they own."""
    return oversees_all(actor) or (
        is_person(actor) and actor.id in (finding.owner_id, finding.control.owner_id)
    )


def close_blocker(user, finding: Finding) -> str | None:
    """Why `user` may not ask to close `finding`, or None: "not_owner" (only the finding's
    or the control's owner asks), "not_open"."""
    if not is_person(user) or user.id not in (finding.owner_id, finding.control.owner_id):
        return "not_owner"
    if finding.status != FindingStatus.OPEN:
        return "not_open"
    return None


def may_close_finding(user, finding: Finding) -> bool:
    """The finding's (or its control's) owner asks to close an open finding."""
    return close_blocker(user, finding) is None


def closure_review_blocker(user, finding: Finding) -> str | None:
    """Why `user` may not review `finding`'s closure, or None: "not_submitted",
    "not_admin", "own_closure" (four eyes: the person who asked to close never decides,
    and neither does the finding's owner, even when someone else submitted for them)."""
    if finding.status != FindingStatus.CLOSURE_SUBMITTED:
        return "not_submitted"
    if not is_admin(user):
        return "not_admin"
    if user.id in (finding.closure_submitted_by_id, finding.owner_id):
        return "own_closure"
    return None


def may_review_closure(user, finding: Finding) -> bool:
    """An admin who neither submitted the closure nor owns the finding closes or returns it."""
    return closure_review_blocker(user, finding) is None


# Training exemptions.


def may_grant_exemption(actor, person: User) -> bool:
    """Admins exempt people from a course, never themselves (four eyes: an exemption is
    a decision about someone else); a process may (the operator's decision, recorded)."""
    if not is_person(actor):
        return True
    return is_admin(actor) and actor.id != person.id


def may_record_training_for(actor, person: User) -> bool:
    """Admins (and processes) record training for anyone, managers for their department,
    everyone for themselves."""
    if not is_person(actor) or is_admin(actor) or actor.id == person.id:
        return True
    return (
        is_manager(actor)
        and actor.department_id is not None
        and actor.department_id == person.department_id
    )


# Evidence.


class Attachable(Protocol):
    """What the evidence rules need to know of an object evidence links to."""

    owner_ids: frozenset[int]
    locked: object


def sees_all_evidence(actor) -> bool:
    """Admins and processes see every item, withdrawn ones included."""
    return not is_person(actor) or is_admin(actor)


def is_responsible_for(actor, target: Attachable) -> bool:
    """Admins, processes and the people responsible for an object (its owners)."""
    return not is_person(actor) or is_admin(actor) or actor.id in target.owner_ids


def may_attach(actor, target: Attachable) -> bool:
    """Those responsible for an object attach evidence to it, unless its record is locked
    (a check attested or accepted, a finding whose closure was submitted or accepted):
    what was attested and reviewed stays what the page shows."""
    return is_responsible_for(actor, target) and not target.locked


def can_view_evidence(actor, item: Evidence, targets: Iterable[Attachable] = ()) -> bool:
    """Admins see everything; auditors everything not withdrawn; the uploader and the
    owners of a linked object (`targets`, the item's resolved links, read only when
    needed) see active items. Everyone else must not learn the item exists."""
    if sees_all_evidence(actor):
        return True
    if item.status != EvidenceStatus.ACTIVE.value:
        return False
    if is_auditor(actor) or item.uploaded_by_id == actor.id:
        return True
    return any(actor.id in target.owner_ids for target in targets)


def may_withdraw_evidence(actor, item: Evidence) -> bool:
    """Admins (and processes) withdraw an active item."""
    return sees_all_evidence(actor) and item.status == EvidenceStatus.ACTIVE.value


# Exports.


def can_see_export(user: User | None, job: ExportJob) -> bool:
    """An export job (its page, status, file) is seen by the person who asked for it and by
    admins; anyone else is told it does not exist (404)."""
    return user is not None and (job.owner_id == user.id or is_admin(user))
