"""The lock: requirements.txt (app + gunicorn) and requirements-dev.txt (plus the test tools)
pin every dependency pyproject.toml names, inside its range, with hashes, at the same
versions in both files; and the environment the tests run in is exactly the lock."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(name: str) -> dict[str, tuple[str, int]]:
    """{package: (version, number of hashes)} of a lock file."""
    found: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match.group(1))
            found[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def requirements(*extras: str) -> list[Requirement]:
    """pyproject's dependencies plus the named extras."""
    names = PROJECT["dependencies"] + [
        r for e in extras for r in PROJECT["optional-dependencies"][e]
    ]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.txt", ("server",)), ("requirements-dev.txt", ("server", "test"))],
)
def test_lock_pins_every_dependency_within_its_range(lock, extras):
    """Each direct dependency (and its extras' packages) is pinned to a version its range
    allows; every pin carries at least one sha256."""
    locked = pins(lock)
    assert locked, f"{lock} pins nothing"
    for req in requirements(*extras):
        name = canonicalize_name(req.name)
        assert name in locked, f"{lock} does not pin {req} (run `make lock`)"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock}: {name}=={version} is outside {req} (run `make lock`)"
        )
    unhashed = [name for name, (_v, hashes) in locked.items() if not hashes]
    assert not unhashed, f"{lock}: pins without a hash: {unhashed}"
    assert "psycopg-binary" in locked  # psycopg[binary]: the extra's package is pinned too


def test_both_locks_agree():
    """The test environment runs exactly the versions production installs."""
    app, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    differ = {n: (app[n][0], dev[n][0]) for n in app if n in dev and app[n][0] != dev[n][0]}
    assert set(app) <= set(dev), f"missing from requirements-dev.txt: {set(app) - set(dev)}"
    assert not differ, f"versions differ between the locks: {differ}"


def test_tests_run_on_the_lock():
    """Every package requirements-dev.txt pins is installed at that version (`make test`
    installs from the lock); a stale environment shows here, not as a puzzling failure."""
    wrong = {}
    for name, (version, _hashes) in pins("requirements-dev.txt").items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed vs locked: {wrong} (run `make .venv/bin/.installed`)"
