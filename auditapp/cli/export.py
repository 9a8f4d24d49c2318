"""`auditapp export`: the auditor workbook (and evidence bundle) from the command line, and
`auditapp export verify` to re-check a bundle. Thin over services.export.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from auditapp import scheduler
from auditapp.cli._common import actor as cli_actor
from auditapp.cli._common import begin_audit, enter_app, fail
from auditapp.errors import DomainError
from auditapp.extensions import db
from auditapp.services import export


@click.group("export", cls=AppGroup, invoke_without_command=True)
@click.option("--scope", "fy", default=None, help="A fiscal year, e.g. FY2026.")
@click.option("--from", "from_", default=None, help="First day of a date range (YYYY-MM-DD).")
@click.option("--to", "to", default=None, help="Last day of a date range (YYYY-MM-DD).")
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="A category id, e.g. technical (repeatable; default: all).",
)
@click.option("--lang", default=None, help="Language of the workbook: ja or en.")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="The workbook to write (.xlsx)."
)
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a ZIP with the workbook, every evidence file and a manifest of hashes.",
)
@click.pass_context
def group(ctx, fy, from_, to, categories, lang, out, bundle):
    """Write the auditor workbook for a scope (and an evidence bundle); see `export verify`.

    \b
    auditapp export --scope FY2026 --lang ja --out report.xlsx
    auditapp export --from 2026-04-01 --to 2026-09-30 --category technical \\
        --out report.xlsx --bundle bundle.zip
    """
    given = any([fy, from_, to, categories, lang, out, bundle])
    if ctx.invoked_subcommand:
        if given:
            fail(f"the export options do not apply to `export {ctx.invoked_subcommand}`", 2)
        return
    if not given:
        click.echo(ctx.get_help())
        return
    enter_app(ctx)  # only now: `export verify --help` needs no configuration
    config = current_app.config
    try:
        request = export.make_request(
            fy=fy,
            from_=from_,
            to=to,
            categories=categories,
            lang=lang or config["DEFAULT_LANGUAGE"],
            start_month=int(config["FISCAL_YEAR_START_MONTH"]),
            timezone=config["TIMEZONE"],
        )
    except DomainError as exc:
        # The fields are named after the options they came from.
        message = "; ".join(f"--{k}: {v}" for k, v in exc.errors.items()) or str(exc)
        fail(message, 2)
    _check_outputs(out, bundle)
    begin_audit()
    actor = cli_actor()
    try:
        result = export.export_now(
            db.session,
            current_app.extensions["evidence_store"],
            export.exports_dir(current_app.instance_path),
            request,
            actor=actor,
            runner=scheduler.holder_name("cli"),
            stale_after=timedelta(minutes=float(config["EXPORT_STALE_MINUTES"])),
            workbook_path=out,
            bundle_path=bundle,
        )
    except export.ExportBusy as exc:
        fail(str(exc))
    _report(request, result, out, bundle)
    if result.missing:
        for item in result.missing:
            click.echo(str(item), err=True)
        fail(
            f"{len(result.missing)} evidence file(s) missing or altered; "
            "the rows are marked in the workbook"
        )


def _check_outputs(out: Path | None, bundle: Path | None) -> None:
    """--out is required, an .xlsx in an existing folder; --bundle a .zip, not the same file."""
    if out is None:
        fail("--out is required (the .xlsx workbook to write)", 2)
    if out.suffix.lower() != ".xlsx":
        fail(f"--out {out}: the workbook must be an .xlsx file", 2)
    if bundle is not None and bundle.suffix.lower() != ".zip":
        fail(f"--bundle {bundle}: the bundle must be a .zip file", 2)
    for option, path in (("--out", out), ("--bundle", bundle)):
        if path is not None and not path.resolve().parent.is_dir():
            fail(f"{option} {path}: the folder {path.resolve().parent} does not exist", 2)
    if bundle is not None and out.resolve() == bundle.resolve():
        fail("--out and --bundle must be different files", 2)


def _report(request, result, out: Path, bundle: Path | None) -> None:
    rows = ", ".join(f"{name} {count}" for name, count in result.rows.items())
    click.echo(f"scope: {request.scope_label}; categories: {', '.join(request.category_ids())}")
    if result.empty:
        click.echo("nothing is in scope: the workbook says so")
    click.echo(f"workbook: {out} (rows: {rows}); sha256 {result.workbook_sha256}")
    if bundle:
        click.echo(
            f"bundle: {bundle} ({result.bundle_files} evidence files, {result.size} bytes); "
            f"sha256 {result.sha256}"
        )
    click.echo(f"audit chain: {result.audit_count} entries, head {result.audit_head}")


@group.command("verify")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def export_verify(bundle: Path):
    """Re-check a bundle's hashes and that its workbook matches the manifest; exit 1 naming
    every mismatch."""
    problems = export.verify_bundle(bundle)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        fail(f"{len(problems)} problem(s) in {bundle}")
    click.echo(f"bundle intact: {bundle}")


@group.command("run-queued")
def export_run_queued():
    """Run the exports queued on the web page, oldest first, then exit (the scheduler does
    this every few seconds); exit 1 when one failed."""
    begin_audit()
    config = current_app.config
    ran = export.run_queued(
        db.session,
        current_app.extensions["evidence_store"],
        export.exports_dir(current_app.instance_path),
        runner=scheduler.holder_name("cli"),
        stale_after=timedelta(minutes=float(config["EXPORT_STALE_MINUTES"])),
    )
    db.session.commit()
    for public_id, outcome in ran:
        click.echo(f"export {public_id}: {outcome}")
    if not ran:
        click.echo("no export was waiting (or another one is running)")
    failed = [r for r in ran if r[1] != "done"]
    if failed:
        fail(f"{len(failed)} export(s) failed")
