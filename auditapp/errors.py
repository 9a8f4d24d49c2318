"""Domain errors raised by services and mapped to pages, JSON or CLI messages in one place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a service raises; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message="", errors: dict | None = None):
        # Messages may be lazy translations: rendered in the reader's language when shown.
        super().__init__(message)
        self.message = message
        self.errors = errors or {}

    def __str__(self) -> str:
        return str(self.message)


class InvalidInput(DomainError):
    """The input is wrong; `errors` maps field names to what is wrong with each."""

    status = 400

    @classmethod
    def from_errors(cls, errors: dict) -> InvalidInput:
        """One error naming every bad field ("field: problem; field: problem")."""
        return cls("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


class NotFound(DomainError):
    """The object does not exist or the actor may not know it exists."""

    status = 404


class Forbidden(DomainError):
    """The actor may not do this."""

    status = 403


class Conflict(DomainError):
    """The change collides with the current state (someone else was first)."""

    status = 409


class OpsError(DomainError):
    """An operation on the instance's files cannot go on, or its result does not match what
    it was checked against (backup, restore, the audit trail's anchor); `problems` lists
    each thing found wrong, one line each, printed under the message."""

    status = 409

    def __init__(self, message="", problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class TooManyRequests(DomainError):
    """Throttled; try again later."""

    status = 429
