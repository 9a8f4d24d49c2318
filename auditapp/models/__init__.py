"""Models by domain; importing this package registers every table."""

from __future__ import annotations

from auditapp.models.audit import GENESIS_HASH, AuditEvent
from auditapp.models.org import Department, LoginFailure, Role, User, UserRole

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "Department",
    "LoginFailure",
    "Role",
    "User",
    "UserRole",
]
