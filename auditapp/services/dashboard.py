"""Figures for the home page and the health check."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from auditapp.models import AuditEvent, Department, Role, User, UserRole
from auditapp.services import audit, catalog


def migration_revision(session: Session) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    try:
        return session.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:
        session.rollback()
        return None


def home_summary(session: Session, user: User) -> dict:
    """What the home page shows this person: their profile and, for admins and
    auditors, the organization's size and the audit trail's state."""
    summary: dict = {"roles": sorted(r.value for r in user.roles)}
    if user.has_role(Role.ADMIN):
        summary["unowned_controls"] = catalog.unowned_count(session)
    if user.has_role(Role.ADMIN, Role.AUDITOR):
        role_counts = dict(
            session.execute(
                select(UserRole.role, func.count())
                .join(User, User.id == UserRole.user_id)
                .where(User.active.is_(True))
                .group_by(UserRole.role)
            ).all()
        )
        summary["org"] = {
            "active_users": session.scalar(
                select(func.count()).select_from(User).where(User.active.is_(True))
            ),
            "inactive_users": session.scalar(
                select(func.count()).select_from(User).where(User.active.is_(False))
            ),
            "departments": session.scalar(select(func.count()).select_from(Department)),
            "roles": {r.value: role_counts.get(r.value, 0) for r in Role},
            "audit_events": session.scalar(select(func.count()).select_from(AuditEvent)),
            "audit_head": audit.head(session),
        }
    return summary
