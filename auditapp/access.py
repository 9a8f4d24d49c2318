"""Who may do what: every endpoint's allowed roles, and object-level predicates.

This is the one place where permissions are decided. The web layer looks up each
request's endpoint here before the view runs; an endpoint missing from RULES is
refused (and a test walking app.url_map fails), so no route can be added without
stating who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditapp.models import Role, User

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
    # Training: object-level rules in services.training (may_record_for).
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
    # Auditor export: the job's owner or an admin (object-level in the view).
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
