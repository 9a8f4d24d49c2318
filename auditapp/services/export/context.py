"""One export run: its scope as times and SQL conditions, short reads, shared values,
progress.

Scale and transactions (SECURITY.md item 17): rows are read in keyset-paginated batches,
each batch its own short read transaction that ends before its rows are written, so no
database transaction stays open while the workbook (or a bundle) is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, cast, exists, or_, select, true
from sqlalchemy.orm import Session

from auditapp import database
from auditapp.models import (
    AuditEvent,
    Check,
    Control,
    Evidence,
    EvidenceLink,
    EvidenceStatus,
    Finding,
)
from auditapp.services.catalog import CATEGORIES
from auditapp.services.export.request import ExportRequest
from auditapp.services.export.words import text
from auditapp.storage import EvidenceStore

BATCH = 5000
_ALL_CATEGORIES = {c.id for c in CATEGORIES}


@dataclass
class MissingEvidence:
    """An evidence item whose file is missing from the store or no longer has its hash."""

    evidence_id: int
    sha256: str
    filename: str
    problem: str  # "missing" or "altered"

    def __str__(self) -> str:
        return f"{self.problem}: evidence {self.evidence_id} ({self.filename}) sha256 {self.sha256}"


class ExportContext:
    """The state of one export: request, scope as times, today, progress; short reads."""

    def __init__(
        self,
        session: Session,
        request: ExportRequest,
        *,
        now: datetime | None = None,
        progress: Callable[[int, int], None] | None = None,
    ):
        self.session = session
        self.request = request
        self.lang = request.lang
        self.tz = ZoneInfo(request.timezone)
        self.now = now or datetime.now(UTC)
        self.today = self.now.astimezone(self.tz).date()
        self.categories = request.category_ids()
        self.start = datetime.combine(request.scope_from, time.min, tzinfo=self.tz)
        self.end = datetime.combine(request.scope_to + timedelta(days=1), time.min, tzinfo=self.tz)
        self.total = 0
        self.done = 0
        # Set from the first read: later sheets and the bundle plan see the same items.
        self.audit_head_id = 0
        self.evidence_max_id = 0
        # The Evidence sheet's inputs (evidence id -> path in the bundle / "ok", "missing"
        # or "altered" as found by a bundle copy; the store to check files against) and
        # what it found.
        self.bundle_paths: dict[int, str] = {}
        self.file_status: dict[int, str] | None = None
        self.store: EvidenceStore | None = None
        self.missing: list[MissingEvidence] = []
        self._progress = progress
        self._reported = -1
        self._memo: dict[str, Any] = {}

    def t(self, key: str) -> str:
        """A word of the workbook in the export's language."""
        return text(self.lang, key)

    def once(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value computed once per export and shared by the sheets that need it (e.g. the
        training statuses: counted for the progress bar, then written)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        """One short read transaction, ended on leaving (deferred on SQLite, so an export
        never holds the write lock; the caller's write intent is restored)."""
        try:
            with database.reading():
                yield
        finally:
            self.session.rollback()

    def batches(
        self,
        make_stmt: Callable[[Any], Any],
        key: Callable[[Any], Any],
        enrich: Callable[[list], Any] | None = None,
        size: int = BATCH,
    ) -> Iterator[tuple[list, Any]]:
        """Keyset-paginated reads: `make_stmt(after)` selects rows after a key (None first);
        each batch and its `enrich(rows)` are read in one short transaction, ended before
        the batch is handed out."""
        after = None
        while True:
            with self.read():
                # Core execution: plain rows without the ORM's result machinery.
                rows = self.session.connection().execute(make_stmt(after).limit(size)).all()
                extra = enrich(rows) if enrich is not None and rows else None
            if not rows:
                return
            yield rows, extra
            if len(rows) < size:
                return
            after = key(rows[-1])

    def advance(self, n: int = 1) -> None:
        """Count work done and tell the progress callback (about every 1 %)."""
        self.done += n
        if self._progress is None:
            return
        step = max(1, self.total // 100)
        if self.done - self._reported >= step or self.done >= self.total > self._reported:
            self._reported = self.done
            self._progress(min(self.done, self.total), self.total)

    def complete(self) -> None:
        """Tell the progress callback the export is complete."""
        if self._progress is not None:
            self._progress(self.total, self.total)

    # Scope conditions (SQL) ----------------------------------------------------------------

    def in_categories(self, control_id):
        """A condition on a control id column: its control is in the chosen categories.
        None chosen means every control; no condition then, so SQLite walks the unique
        (control_id, period_key) index in keyset order instead of sorting each batch."""
        if set(self.categories) >= _ALL_CATEGORIES:
            return true()
        return control_id.in_(select(Control.id).where(Control.category.in_(self.categories)))

    def check_scope(self):
        """Checks whose period overlaps the range, of controls in the categories."""
        return and_(
            Check.period_start <= self.request.scope_to,
            Check.period_end >= self.request.scope_from,
            self.in_categories(Check.control_id),
        )

    def check_ids(self, as_text: bool = False):
        col = cast(Check.id, String) if as_text else Check.id
        return select(col).join(Control, Control.id == Check.control_id).where(self.check_scope())

    def finding_scope(self):
        """Findings of in-scope checks, or created in the range, in the categories."""
        return and_(
            self.in_categories(Finding.control_id),
            or_(
                Finding.check_id.in_(self.check_ids()),
                and_(Finding.created_at >= self.start, Finding.created_at < self.end),
            ),
        )

    def finding_ids_text(self):
        return (
            select(cast(Finding.id, String))
            .join(Control, Control.id == Finding.control_id)
            .where(self.finding_scope())
        )

    def evidence_scope(self):
        """Active evidence linked to in-scope checks or findings, or to the categories'
        controls and uploaded by the end of the range."""
        link = EvidenceLink
        linked = exists().where(
            link.evidence_id == Evidence.id,
            or_(
                and_(link.object_type == "check", link.object_id.in_(self.check_ids(True))),
                and_(link.object_type == "finding", link.object_id.in_(self.finding_ids_text())),
                and_(
                    link.object_type == "control",
                    link.object_id.in_(
                        select(Control.code).where(Control.category.in_(self.categories))
                    ),
                    Evidence.uploaded_at < self.end,
                ),
            ),
        )
        return and_(
            Evidence.status == EvidenceStatus.ACTIVE.value,
            Evidence.id <= self.evidence_max_id,
            linked,
        )

    def audit_scope(self):
        """Entries dated in the range, up to the head printed in the summary."""
        return and_(
            AuditEvent.at >= self.start,
            AuditEvent.at < self.end,
            AuditEvent.id <= self.audit_head_id,
        )
