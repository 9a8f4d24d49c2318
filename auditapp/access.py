"""Who may do what: every endpoint's allowed roles, and object-level predicates.

This is the one place where permissions are decided. The web layer looks up each
request's endpoint here before the view runs; an endpoint missing from RULES is
refused (and a test walking app.url_map fails), so no route can be added without
stating who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditapp.models import ExportJob, Role, User

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
    "admin.users_list": roles(ADMIN),
    "admin.user_new": roles(ADMIN),
    "admin.user_edit": roles(ADMIN),
    "admin.user_deactivate": roles(ADMIN),
    "admin.user_reactivate": roles(ADMIN),
    "admin.user_reset_password": roles(ADMIN),
    "admin.departments_list": roles(ADMIN),
    "admin.department_edit": roles(ADMIN),
    "audit.events": roles(ADMIN, AUDITOR),
    "catalog.index": SIGNED_IN,
    "catalog.control": SIGNED_IN,
    "catalog.control_settings": roles(ADMIN),
    "catalog.set_profile": roles(ADMIN),
    # Evidence: object-level rules in services.evidence (can_view, may_attach).
    "evidence.library": SIGNED_IN,
    "evidence.upload": SIGNED_IN,
    "evidence.detail": SIGNED_IN,
    "evidence.download": SIGNED_IN,
    "evidence.preview": SIGNED_IN,
    "evidence.withdraw": roles(ADMIN),
    # Checks and findings: object-level rules in services.checks (owner, attester, reviewer).
    "checks.check_list": roles(ADMIN, MANAGER, AUDITOR),
    "checks.check_page": roles(ADMIN, MANAGER, AUDITOR),
    "checks.attest": roles(MANAGER),
    "checks.review": roles(ADMIN),
    "checks.finding_list": roles(ADMIN, MANAGER, AUDITOR),
    "checks.finding_page": roles(ADMIN, MANAGER, AUDITOR),
    "checks.finding_close": roles(MANAGER),
    "checks.finding_review": roles(ADMIN),
    "checks.dashboard_page": roles(ADMIN, AUDITOR),
    # Training: object-level rules in services.training (may_record_for).
    "training.mine": SIGNED_IN,
    "training.complete": SIGNED_IN,
    "training.department": roles(ADMIN, MANAGER),
    "training.group_session": roles(ADMIN, MANAGER),
    "training.department_remind": roles(MANAGER),
    "training.organization": roles(ADMIN, AUDITOR),
    "training.organization_csv": roles(ADMIN, AUDITOR),
    "training.courses": roles(ADMIN),
    "training.course_new": roles(ADMIN),
    "training.course_edit": roles(ADMIN),
    "training.course_retire": roles(ADMIN),
    "training.course_exempt": roles(ADMIN),
    "training.import_page": roles(ADMIN),
    # Auditor export: the job's owner or an admin (can_see_export).
    "exports.index": roles(ADMIN, AUDITOR),
    "exports.create": roles(ADMIN, AUDITOR),
    "exports.job": roles(ADMIN, AUDITOR),
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


def can_see_export(user: User | None, job: ExportJob) -> bool:
    """An export job (its page, status, file) is seen by the person who asked for it and by
    admins; anyone else is told it does not exist (404)."""
    return user is not None and (job.owner_id == user.id or user.has_role(ADMIN))
