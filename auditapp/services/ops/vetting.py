"""What a restored database must agree with before it is put in place.

`restore` trusts nothing in a backup folder (issue 11 item 6): the manifest must carry a
valid signature under the instance's audit key, and the restored database, still in a
private copy (SQLite) or an uncommitted transaction (PostgreSQL), must hold the migration
revision and row counts its manifest states, and an audit trail that recomputes, matches
the manifest's signed checkpoint exactly and agrees with every checkpoint of this
instance. The schema check (schema.py) runs before these, so the data checks only ever
read tables the migrations define.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.services import audit
from auditapp.services.ops.files import signature_problem
from auditapp.services.ops.snapshot import ALEMBIC_TABLE, row_counts

SUBJECT = "the backup's trail"


def count_problems(actual: dict[str, int], expected: dict[str, int]) -> list[str]:
    """Each table whose row count differs from the manifest's (or that only one side has)."""
    problems = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            problems.append(f"table {table}: in the manifest but not in the restored database")
        elif table not in expected:
            problems.append(f"table {table}: in the restored database but not in the manifest")
        elif actual[table] != expected[table]:
            problems.append(
                f"table {table}: {actual[table]} rows restored, the manifest says {expected[table]}"
            )
    return problems


@dataclass
class Vetting:
    """The manifest, the keys and checkpoints a restore is held against, and what it notes."""

    manifest: dict
    keys: audit.AuditKeys | None
    signed: audit.Checkpoint | None  # the manifest's checkpoint, when its signature holds
    instance: list[audit.Checkpoint]  # this instance's checkpoints
    revision: str
    force: bool
    notes: list[str] = field(default_factory=list)
    _refusals: list[str] = field(default_factory=list)

    @classmethod
    def prepare(
        cls, manifest: dict, anchor: audit.Anchor, revision: str, *, force: bool, trust: bool
    ) -> Vetting:
        """Check the manifest's signature (OpsError unless `trust`, i.e. --trust-unsigned)
        and read the instance's checkpoints."""
        keys = anchor.keys()
        wrong = signature_problem(manifest, keys, anchor.key_file)
        if wrong and not trust:
            raise OpsError(
                f"the backup's manifest is refused: {wrong}; nothing was restored",
                [
                    "a backup whose manifest does not verify may have been edited; if you "
                    "know where it comes from (made by an older version, or its key is "
                    "lost), --trust-unsigned restores it with every other check"
                ],
            )
        vetting = cls(manifest, keys, None, [], revision, force)
        if wrong:
            vetting.notes.append(f"the manifest was not verified ({wrong}): --trust-unsigned")
        else:
            try:
                vetting.signed = audit.Checkpoint.from_json(
                    manifest.get("audit_checkpoint"), "the backup's manifest"
                )
            except ValueError as exc:
                raise OpsError(f"the manifest's audit_checkpoint is not valid: {exc}") from None
        vetting.instance, file_problems = anchor.checkpoints()
        vetting.notes += file_problems
        return vetting

    def problems(self, session: Session) -> list[str]:
        """Everything the restored database (not yet in place) disagrees with."""
        found = self._revision_problems(session)
        found += count_problems(row_counts(session), self.manifest["row_counts"])
        return found + self._trail_problems(session)

    def _revision_problems(self, session: Session) -> list[str]:
        found = session.scalars(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).all()
        if list(found) != [self.revision]:
            shown = ", ".join(found) or "none"
            return [
                f"migration revision: {shown} in the database, the manifest says {self.revision}"
            ]
        return []

    def _binding(self, entries: int) -> list[audit.Checkpoint]:
        """The instance's checkpoints the restored trail must agree with; those recording
        more entries than it holds are what restoring it drops (refused unless forced)."""
        binding, newer = [], []
        for point in self.instance:
            (newer if point.entries > entries else binding).append(point)
        for point in newer:
            if self.keys is None or self.keys.check(point.payload(), point.key_id, point.signature):
                continue  # not a valid checkpoint: `audit verify` reports it
            what = (
                f"this instance's checkpoint of {point.when} recorded {point.entries} entries; "
                f"{SUBJECT} holds {entries}: restoring it drops the entries recorded since"
            )
            if self.force:
                self.notes.append(what)
            else:
                self._refusals.append(what + " (pass --force to restore it anyway)")
        return binding

    def _trail_problems(self, session: Session) -> list[str]:
        entries, head = audit.trail_state(session)
        self._refusals = []
        points = ([self.signed] if self.signed else []) + self._binding(entries)
        report = audit.verify_anchored(session, self.keys, points, subject=SUBJECT)
        found = self._refusals + ([] if report.ok else report.lines())
        chain = self.manifest["audit_chain"]
        if (entries, head) != (chain["entries"], chain["head"]):
            found.append(
                f"{SUBJECT} holds {entries} entries ending in {head}; the manifest says "
                f"{chain['entries']} ending in {chain['head']}"
            )
        signed = self.signed
        if signed and (entries, head) != (signed.entries, signed.head):
            found.append(
                f"{SUBJECT} holds {entries} entries ending in {head}; the manifest's signed "
                f"checkpoint recorded {signed.entries} ending in {signed.head}"
            )
        return found

    def anchor_restore(self, session: Session, anchor: audit.Anchor) -> audit.Checkpoint | None:
        """Record the restore as a "restore" checkpoint (it supersedes the checkpoints of
        entries the restore dropped); a failure is a note, the restore stands."""
        try:
            return audit.write_checkpoint(session, anchor, "restore")
        except (OpsError, OSError) as exc:
            self.notes.append(f"no restore checkpoint written: {exc}")
            return None
        finally:
            session.rollback()


def work_dir_for(database_path: str | None) -> Path | None:
    """Where private copies are made: next to a SQLite file (same disk), else the default."""
    return Path(database_path).resolve().parent if database_path else None
