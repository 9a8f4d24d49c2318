"""Models by domain; importing this package registers every table."""

from __future__ import annotations

from auditapp.models.audit import GENESIS_HASH, AuditEvent
from auditapp.models.auth import LoginFailure, LoginSession
from auditapp.models.catalog import Control, ControlStatus, ControlVersion, OrgSetting, Profile
from auditapp.models.checks import (
    Attestation,
    Check,
    CheckStatus,
    Decision,
    Finding,
    FindingStatus,
    Result,
    Review,
    Risk,
)
from auditapp.models.evidence import Evidence, EvidenceLink, EvidenceStatus
from auditapp.models.exports import ExportFailure, ExportJob, ExportState
from auditapp.models.jobs import JobRun, SchedulerLock
from auditapp.models.org import Department, Role, User, UserRole
from auditapp.models.reminders import SentReminder
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
    "Result",
    "Review",
    "Risk",
    "SchedulerLock",
    "SentReminder",
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
    "LoginSession",
    "Role",
    "User",
    "UserRole",
]
