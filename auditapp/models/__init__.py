"""Models by domain; importing this package registers every table."""

from __future__ import annotations

from auditapp.models.audit import GENESIS_HASH, AuditEvent
from auditapp.models.catalog import Control, ControlStatus, ControlVersion, OrgSetting, Profile
from auditapp.models.evidence import Evidence, EvidenceLink, EvidenceStatus
from auditapp.models.org import Department, LoginFailure, Role, User, UserRole

__all__ = [
    "GENESIS_HASH",
    "AuditEvent",
    "Control",
    "ControlStatus",
    "ControlVersion",
    "OrgSetting",
    "Profile",
    "Department",
    "Evidence",
    "EvidenceLink",
    "EvidenceStatus",
    "LoginFailure",
    "Role",
    "User",
    "UserRole",
]
