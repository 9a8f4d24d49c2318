"""A newcomer's first commands: help and `catalog validate` need no configuration; missing or
wrong configuration is one line on stderr and exit 1, never a traceback.

The subprocess tests run the installed `auditapp` script with a clean environment (no
AUDITAPP_* variable but the ones given), as in a fresh checkout; the others use click's
runner on the real group, so the app is built by the command itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from auditapp.cli import cli

AUDITAPP = Path(sys.executable).parent / "auditapp"


def clean_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A bare environment: PATH, HOME and the given AUDITAPP_* settings only."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    return env | {f"AUDITAPP_{k}": v for k, v in settings.items()}


def run(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """`auditapp ARGS` in a subprocess from an empty folder with a clean environment."""
    return subprocess.run(
        [str(AUDITAPP), *args],
        env=clean_env(tmp_path, **settings),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def invoke(*args: str, **settings: str):
    """`auditapp ARGS` through click's runner; the environment holds only the given
    AUDITAPP_* settings (the others are unset for the call)."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("AUDITAPP_")}
    env |= {f"AUDITAPP_{k}": v for k, v in settings.items()}
    return CliRunner().invoke(cli, list(args), env=env)


def assert_one_error_line(stderr: str, *needles: str) -> None:
    """stderr is exactly one `error: …` line containing every needle; no traceback."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], stderr


def test_help_in_a_fresh_checkout(tmp_path):
    """`auditapp --help` with no SECRET_KEY and no instance folder lists every command."""
    missing = tmp_path / "no-instance"
    result = run(tmp_path, "--help", INSTANCE_PATH=str(missing))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for name in ("init", "demo", "users", "catalog", "evidence", "checks", "tick", "export"):
        assert f"\n  {name} " in result.stdout
    assert "  db " in result.stdout  # Flask-Migrate's group, without building the app
    assert not missing.exists()


def test_subcommand_help_in_a_subprocess(tmp_path):
    """A nested command's --help works from the installed script without configuration."""
    result = run(tmp_path, "catalog", "assign", "--help", INSTANCE_PATH=str(tmp_path / "i"))
    assert result.returncode == 0, result.stderr
    assert "Usage: auditapp catalog assign [OPTIONS] CONTROL_CODE EMAIL" in result.stdout
    assert result.stderr == ""


def _every_command(group: click.Group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _every_command(command, (*path, name))


def test_every_help_without_configuration(tmp_path):
    """Every command's and group's --help answers 0 with no SECRET_KEY and builds no app."""
    missing = tmp_path / "no-instance"
    paths = list(_every_command(cli))
    assert len(paths) > 30
    for path in paths:
        result = invoke(*path, "--help", INSTANCE_PATH=str(missing))
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output and "Traceback" not in result.output, path
    assert not missing.exists()


def test_catalog_validate_in_a_fresh_checkout(tmp_path):
    """`catalog validate` reads the shipped controls/ without SECRET_KEY or instance folder."""
    missing = tmp_path / "no-instance"
    result = run(tmp_path, "catalog", "validate", INSTANCE_PATH=str(missing))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("catalog valid: ") and "controls in 8 files" in result.stdout
    assert not missing.exists()


def test_catalog_validate_reads_the_configured_path(tmp_path):
    """Without PATH, validate reads CATALOG_PATH as configured (here from the environment)."""
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "01-basic-policy.yaml").write_text("controls:\n  - id: 基本\n", encoding="utf-8")
    result = invoke(
        "catalog", "validate", INSTANCE_PATH=str(tmp_path / "i"), CATALOG_PATH=str(folder)
    )
    assert result.exit_code == 1
    assert "01-basic-policy.yaml" in result.stderr and "problem(s) in the catalog" in result.stderr
    good = invoke("catalog", "validate", INSTANCE_PATH=str(tmp_path / "i"))
    assert good.exit_code == 0 and good.output.startswith("catalog valid: ")


def test_no_secret_key_is_one_line(tmp_path):
    """A command that needs the app, without SECRET_KEY: one line saying where to put it."""
    instance = tmp_path / "instance"
    result = run(tmp_path, "users", "list", INSTANCE_PATH=str(instance))
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "SECRET_KEY is not set", str(instance / "config.py"))
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("settings", "needles"),
    [
        ({"PAGE_SIZE": "fifty"}, ["AUDITAPP_PAGE_SIZE: expected a JSON value, got 'fifty'"]),
        ({"SCHEDULER_IN_PROCESS": "yes please"}, ["AUDITAPP_SCHEDULER_IN_PROCESS"]),
        ({"FISCAL_YEAR_START_MONTH": "13"}, ["FISCAL_YEAR_START_MONTH must be 1..12, got 13"]),
        ({"FISCAL_YEAR_START_MONTH": "0"}, ["FISCAL_YEAR_START_MONTH must be 1..12, got 0"]),
        ({"FISCAL_YEAR_START_MONTH": '"April"'}, ["FISCAL_YEAR_START_MONTH must be a whole"]),
        ({"FISCAL_YEAR_START_MONTH": "[4]"}, ["FISCAL_YEAR_START_MONTH must be a whole"]),
        ({"DEFAULT_LANGUAGE": "fr"}, ["DEFAULT_LANGUAGE must be one of"]),
        ({"DATABASE_URL": "not a url"}, ["DATABASE_URL:"]),
        ({"DATABASE_URL": "oracle9://db/x"}, ["DATABASE_URL:"]),
    ],
    ids=[
        "not-json",
        "not-json-bool",
        "month-13",
        "month-0",
        "month-text",
        "month-list",
        "language",
        "url",
        "driver",
    ],
)
def test_wrong_configuration_is_one_line(tmp_path, settings, needles):
    """Each wrong setting: one `error:` line naming it, exit 1 (click's runner)."""
    result = invoke("users", "list", INSTANCE_PATH=str(tmp_path), SECRET_KEY="k" * 32, **settings)
    assert result.exit_code == 1, result.output
    assert_one_error_line(result.stderr, *needles)


def test_wrong_configuration_in_a_subprocess(tmp_path):
    """The installed script says the same in one line (no traceback) for a bad JSON value."""
    result = run(
        tmp_path,
        "doctor",
        INSTANCE_PATH=str(tmp_path),
        SECRET_KEY="k" * 32,
        FISCAL_YEAR_START_MONTH="April",
    )
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "AUDITAPP_FISCAL_YEAR_START_MONTH")


def test_sqlite_database_that_cannot_be_opened(tmp_path):
    """A SQLite file in a folder that does not exist: one line naming the database."""
    url = f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}"
    result = run(
        tmp_path, "init", INSTANCE_PATH=str(tmp_path / "i"), SECRET_KEY="k" * 32, DATABASE_URL=url
    )
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "cannot be used", "unable to open database file", url)


def test_postgresql_that_cannot_be_reached(tmp_path):
    """A PostgreSQL server that does not answer: one line, the password hidden."""
    url = "postgresql+psycopg://auditapp:s3cret@127.0.0.1:1/auditapp"
    result = invoke(
        "users", "list", INSTANCE_PATH=str(tmp_path), SECRET_KEY="k" * 32, DATABASE_URL=url
    )
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "postgresql+psycopg://auditapp:***@127.0.0.1:1/auditapp")
    assert "s3cret" not in result.output


def test_database_without_schema_says_run_init(tmp_path):
    """Before `auditapp init` a command says so instead of a 'no such table' traceback."""
    result = invoke("users", "list", INSTANCE_PATH=str(tmp_path), SECRET_KEY="k" * 32)
    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "no such table", "run `auditapp init`")
