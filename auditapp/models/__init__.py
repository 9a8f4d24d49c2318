"""Models by domain; importing this package registers every table."""

from __future__ import annotations

from auditapp.models.audit import GENESIS_HASH, AuditEvent
from auditapp.models.catalog import Control, ControlStatus, ControlVersion, OrgSetting, Profile
from auditapp.models.checks import (
    Attestation,
    Check,
    CheckStatus,
    Decision,
    Finding,
    FindingStatus,
    JobRun,
    Notification,
    Result,
    Review,
    Risk,
    SchedulerLock,
)
from auditapp.models.evidence import Evidence, EvidenceLink, EvidenceStatus
from auditapp.models.exports import ExportFailure, ExportJob, ExportState
from auditapp.models.org import Department, LoginFailure, Role, User, UserRole
from auditapp.models.training import (
    Completion,
    Course,
    CourseDepartment,
    CourseKind,
    CourseRole,
    Exemption,
    TrainingStatus,
)

__all__ = [
    "Completion",
    "Course",
    "CourseDepartment",
    "CourseKind",
    "CourseRole",
    "Exemption",
    "TrainingStatus",
    "Attestation",
    "Check",
    "CheckStatus",
    "Decision",
    "Finding",
    "FindingStatus",
    "JobRun",
    "Notification",
    "Result",
    "Review",
    "Risk",
    "SchedulerLock",
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
    "ExportFailure",
    "ExportJob",
    "ExportState",
    "LoginFailure",
    "Role",
    "User",
    "UserRole",
]
