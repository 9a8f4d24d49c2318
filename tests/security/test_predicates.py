"""ASVS 5.0 8.2.2 (object-level access): the named predicates of access.py decide who may
see and do what with each object, for every role and for processes (CLI, scheduler)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from auditapp import access
from auditapp.services import catalog, evidence
from tests.factories import make_check_and_finding, make_evidence, make_user

PROCESSES = ["cli:root", "scheduler"]
APP = Path(access.__file__).parent


@pytest.fixture
def world(app, session):
    """An owner's check, finding and evidence; one person per role; another manager."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    owner = make_user(session, roles=["manager"])
    check, finding = make_check_and_finding(session, "ORG-01", owner=owner)
    item = make_evidence(app, session, link=f"check:{check.id}")
    people = {role: make_user(session, roles=[role]) for role in ("admin", "employee", "auditor")}
    people["owner"] = owner
    people["other_manager"] = make_user(session, roles=["manager"])
    session.flush()
    return check, finding, item, people


def test_is_person():
    """Only a User is a person; the command line and the scheduler are processes."""
    assert not any(access.is_person(p) for p in PROCESSES)
    assert access.person_id("scheduler") is None


@pytest.mark.parametrize(
    ("who", "sees"),
    [("admin", True), ("auditor", True), ("owner", True), ("other_manager", False)]
    + [("employee", False)],
)
def test_who_sees_checks_and_findings(world, who, sees):
    """Admins, auditors and the owner see a check and its finding; no one else does."""
    check, finding, _item, people = world
    assert access.can_view_check(people[who], check) is sees
    assert access.can_view_finding(people[who], finding) is sees


@pytest.mark.parametrize(
    ("who", "sees"),
    [("admin", True), ("auditor", True), ("owner", True), ("other_manager", False)]
    + [("employee", False)],
)
def test_who_sees_evidence(app, session, world, who, sees):
    """Evidence follows the objects it is linked to (and its uploader); withdrawn items
    only admins and processes see."""
    _check, _finding, item, people = world
    assert evidence.can_view(session, people[who], item) is sees
    evidence.withdraw(session, "test", item, "誤登録")
    assert evidence.can_view(session, people[who], item) is (who == "admin")
    assert all(evidence.can_view(session, p, item) for p in PROCESSES)


def test_only_the_owner_attests_and_only_on_time(world):
    """The owner attests an open check once its period started; nobody else, never a process."""
    check, _finding, _item, people = world
    day = max(date.today(), check.period_start)
    assert access.may_attest(people["owner"], check, day)
    assert access.attest_blocker(people["owner"], check, date(2000, 1, 1)) == "not_started"
    for who in ("admin", "auditor", "other_manager", "employee"):
        assert access.attest_blocker(people[who], check, day) == "not_owner"
    assert not any(access.may_attest(p, check, day) for p in PROCESSES)


def test_processes_see_and_keep_house_but_sign_nothing(world):
    """Processes see every object and may attach evidence; they never make a person's
    signed statement (attest, review, ask to close, decide on a closure)."""
    check, finding, _item, _people = world
    target = evidence.LinkTarget("check", str(check.id), "x", frozenset())
    for process in PROCESSES:
        assert access.can_view_check(process, check) and access.can_view_finding(process, finding)
        assert access.may_attach(process, target)
        assert not access.may_review(process, check)
        assert not access.may_close_finding(process, finding)
        assert not access.may_review_closure(process, finding)


def test_attaching_needs_responsibility_and_an_unlocked_object(world):
    """Owners and admins attach; others do not; nobody attaches to a locked object."""
    _check, _finding, _item, people = world
    open_target = evidence.LinkTarget("check", "1", "x", frozenset({people["owner"].id}))
    locked = evidence.LinkTarget("check", "1", "x", frozenset({people["owner"].id}), "locked")
    assert access.may_attach(people["owner"], open_target)
    assert access.may_attach(people["admin"], open_target)
    assert not access.may_attach(people["other_manager"], open_target)
    assert not access.may_attach(people["auditor"], open_target)
    assert not any(access.may_attach(p, locked) for p in [*people.values(), *PROCESSES])


def _sources():
    for path in sorted(APP.rglob("*")):
        if path.suffix in {".py", ".html"}:
            yield path.relative_to(APP).as_posix(), path.read_text(encoding="utf-8")


# Files other helpers are changing while this rule lands; the lead moves their calls to
# access.py after merging (then empties this list).
NOT_YET: set[str] = set()


def test_roles_are_read_only_in_access_and_models():
    """`has_role` is called only by access.py (and defined in models): every other place
    asks a named predicate."""
    callers = sorted(
        name
        for name, text in _sources()
        if re.search(r"\bhas_role\(", text)
        and name != "access.py"
        and not name.startswith("models/")
        and name not in NOT_YET
    )
    assert callers == []
