"""The schema check: is a database's schema exactly what the migrations create?

A restored backup (and the live database, for `doctor`) is compared with a reference
built by running this code's migrations up to the same revision into a scratch database:
a temporary SQLite file, or on PostgreSQL a scratch schema inside a transaction that is
rolled back. The migrations, not the models, are the reference: they are what
`auditapp init` runs, and the models' metadata says nothing of triggers or of what a
migration did by hand. Anything else (a trigger, a view, a function, a rule, a policy, a
table, index or column no migration creates) is named, one line each.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from auditapp.errors import OpsError

# Tables SQLite makes itself (AUTOINCREMENT, ANALYZE); nothing else may be named sqlite_*.
_SQLITE_INTERNAL = {
    "sqlite_sequence": "CREATE TABLE sqlite_sequence(name,seq)",
    "sqlite_stat1": "CREATE TABLE sqlite_stat1(tbl,idx,stat)",
    "sqlite_stat4": "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)",
}
_CONSTRAINT_CLAUSE = re.compile(r"(CONSTRAINT|PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK)\b", re.I)


# Running the migrations without an app -------------------------------------------------


def _script(migrations_dir: str):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    return cfg, ScriptDirectory.from_config(cfg)


def check_revision(migrations_dir: str, revision: str | None) -> str:
    """`revision` when this code's migrations know it; OpsError otherwise."""
    if not revision:
        raise OpsError(
            "the backup's database has no migration revision (it was not made by `auditapp "
            "init`), so its schema cannot be checked"
        )
    _cfg, script = _script(migrations_dir)
    if revision not in {s.revision for s in script.walk_revisions()}:
        raise OpsError(
            f"the backup is at migration revision {revision}, which this code does not know; "
            f"restore it with the version of auditapp that made it"
        )
    return revision


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_migrations(conn: Connection, migrations_dir: str, revision: str) -> None:
    """Upgrade the database behind `conn` to `revision` with this code's migrations, as
    `auditapp init` does, but without a Flask app (migrations/env.py needs one)."""
    from alembic.runtime.environment import EnvironmentContext

    cfg, script = _script(migrations_dir)

    def upgrade(current, _context):
        return script._upgrade_revs(revision, current)

    with (
        _quiet_alembic(),
        EnvironmentContext(cfg, script, fn=upgrade, destination_rev=revision) as env,
    ):
        env.configure(connection=conn)
        with env.begin_transaction():
            env.run_migrations()


# SQLite ---------------------------------------------------------------------------------


def _top_level_parts(body: str) -> list[str]:
    """Split a CREATE TABLE body at its top-level commas (not inside parentheses or quotes)."""
    parts, current, depth, quote = [], [], 0, ""
    for char in body:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`[":
            quote = "]" if char == "[" else char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def normalize_sql(sql: str | None) -> str | None:
    """A CREATE statement with whitespace collapsed and a table's constraint clauses in a
    fixed order (their order has no meaning; the columns' order is kept)."""
    if sql is None:
        return None
    sql = re.sub(r"\s+", " ", sql).strip()
    start = sql.find("(")
    if not sql.upper().startswith("CREATE TABLE") or start < 0 or not sql.endswith(")"):
        return sql
    parts = _top_level_parts(sql[start + 1 : -1])
    columns = [p for p in parts if not _CONSTRAINT_CLAUSE.match(p)]
    constraints = sorted(p for p in parts if _CONSTRAINT_CLAUSE.match(p))
    # A table rebuilt by a batch migration is named "quoted"; the name is the same.
    head = re.sub(r'^CREATE TABLE "(\w+)"', r"CREATE TABLE \1", sql[:start].strip())
    return f"{head} ({', '.join(columns + constraints)})"


SqliteSchema = dict[tuple[str, str], tuple[str, str | None]]


def sqlite_schema(conn: sqlite3.Connection) -> SqliteSchema:
    """(type, name) -> (table, normalized SQL) for every entry of sqlite_master."""
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return {(kind, name): (table, normalize_sql(sql)) for kind, name, table, sql in rows}


def sqlite_reference(migrations_dir: str, revision: str, work_dir: Path) -> SqliteSchema:
    """The schema the migrations create up to `revision`, in a scratch SQLite file."""
    scratch = Path(work_dir) / f"reference-{uuid.uuid4().hex}.sqlite3"
    engine = sa.create_engine(f"sqlite:///{scratch}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            run_migrations(conn, migrations_dir, revision)
            conn.commit()
        with closing(sqlite3.connect(scratch)) as raw:
            return sqlite_schema(raw)
    finally:
        engine.dispose()
        scratch.unlink(missing_ok=True)


def _column_names(sql: str | None) -> list[str]:
    start = (sql or "").find("(")
    if start < 0:
        return []
    parts = _top_level_parts(sql[start + 1 : -1])
    return [p.split(" ", 1)[0].strip("\"'`[]") for p in parts if not _CONSTRAINT_CLAUSE.match(p)]


def _table_difference(actual: str | None, wanted: str | None) -> str:
    have, want = _column_names(actual), _column_names(wanted)
    extra = [c for c in have if c not in want]
    missing = [c for c in want if c not in have]
    found = [f"column {c} not created by the migrations" for c in extra]
    found += [f"column {c} missing" for c in missing]
    return "; ".join(found) or "column types or constraints differ"


def sqlite_problems(actual: SqliteSchema, reference: SqliteSchema, revision: str) -> list[str]:
    """Each difference between a SQLite schema and the reference, one line each."""
    problems = []
    for (kind, name), (table, sql) in sorted(actual.items()):
        on = f" on {table}" if kind in ("index", "trigger") else ""
        if (kind, name) not in reference:
            if kind == "table" and _SQLITE_INTERNAL.get(name) == sql:
                continue
            problems.append(f"{kind} {name}{on}: not created by the migrations ({revision})")
        elif reference[(kind, name)] != (table, sql):
            detail = _table_difference(sql, reference[(kind, name)][1]) if kind == "table" else ""
            problems.append(
                f"{kind} {name}{on}: defined differently from the migrations ({revision})"
                + (f": {detail}" if detail else "")
            )
    for kind, name in sorted(set(reference) - set(actual)):
        problems.append(f"{kind} {name}: created by the migrations but missing")
    return problems


# PostgreSQL -----------------------------------------------------------------------------

# Every kind of object a schema can hold, described without the schema's name, so a
# restored schema and the scratch reference compare line by line. Objects that belong to
# an extension (installed by the database administrator, not by a restore) are left out.
_NOT_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {cat}::regclass "
    "AND d.objid = {oid} AND d.deptype = 'e')"
)
_PG_DESCRIBE = {
    "relation": (
        "SELECT c.relkind::text || ' ' || c.relname || CASE WHEN c.relrowsecurity "
        "THEN ' (row security)' ELSE '' END FROM pg_class c WHERE c.relnamespace = :ns"
        " AND c.relkind NOT IN ('i', 'I') AND "
        + _NOT_EXTENSION.format(cat="'pg_class'", oid="c.oid")
    ),
    "column": (
        "SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)"
        " || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END"
        " || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')"
        " || CASE WHEN a.attidentity <> '' THEN ' identity' ELSE '' END"
        " || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE c.relnamespace = :ns AND a.attnum > 0 AND NOT a.attisdropped"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')"
    ),
    "index": (
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c"
        " ON c.oid = i.indexrelid WHERE c.relnamespace = :ns"
    ),
    "constraint": (
        "SELECT coalesce(c.relname, '-') || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)"
        " FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid"
        " WHERE k.connamespace = :ns"
    ),
    "function": (
        "SELECT p.prokind::text || ' ' || p.proname || '('"
        " || pg_get_function_identity_arguments(p.oid) || ')'"
        " FROM pg_proc p WHERE p.pronamespace = :ns AND "
        + _NOT_EXTENSION.format(cat="'pg_proc'", oid="p.oid")
    ),
    "trigger": (
        "SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c"
        " ON c.oid = t.tgrelid WHERE c.relnamespace = :ns AND NOT t.tgisinternal"
    ),
    "rule": (
        "SELECT c.relname || '.' || r.rulename FROM pg_rewrite r JOIN pg_class c"
        " ON c.oid = r.ev_class WHERE c.relnamespace = :ns"
    ),
    "policy": (
        "SELECT c.relname || '.' || p.polname FROM pg_policy p JOIN pg_class c"
        " ON c.oid = p.polrelid WHERE c.relnamespace = :ns"
    ),
    "type": (
        "SELECT t.typtype::text || ' ' || t.typname FROM pg_type t WHERE t.typnamespace = :ns"
        " AND t.typcategory <> 'A' AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class"
        " WHERE oid = t.typrelid) = 'c') AND " + _NOT_EXTENSION.format(cat="'pg_type'", oid="t.oid")
    ),
    "operator": (
        "SELECT o.oprname || '(' || format_type(o.oprleft, NULL) || ', ' ||"
        " format_type(o.oprright, NULL) || ')' FROM pg_operator o WHERE o.oprnamespace = :ns"
        " AND " + _NOT_EXTENSION.format(cat="'pg_operator'", oid="o.oid")
    ),
    "collation": "SELECT collname FROM pg_collation WHERE collnamespace = :ns",
    "extension": "SELECT extname FROM pg_extension WHERE extnamespace = :ns",
    "statistics": "SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = :ns",
    "event trigger": "SELECT evtname FROM pg_event_trigger",
}


def pg_describe(conn: Connection, schema: str) -> set[str]:
    """One line per object in `schema` (and per database-wide event trigger)."""
    ns = conn.scalar(text("SELECT oid FROM pg_namespace WHERE nspname = :s"), {"s": schema})
    if ns is None:
        raise OpsError(f"schema {schema!r} does not exist")
    qualified = conn.dialect.identifier_preparer.quote(schema) + "."
    found = set()
    for kind, query in _PG_DESCRIBE.items():
        for (line,) in conn.execute(text(query), {"ns": ns}):
            found.add(f"{kind} {line.replace(qualified, '')}")
    return found


def pg_reference(engine: Engine, migrations_dir: str, revision: str) -> set[str]:
    """The objects the migrations create up to `revision`, described from a scratch schema
    made inside a transaction that is rolled back (nothing is left behind)."""
    scratch = f"auditapp_reference_{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        try:
            conn.execute(text(f'CREATE SCHEMA "{scratch}"'))
            conn.execute(text(f'SET LOCAL search_path TO "{scratch}"'))
            run_migrations(conn, migrations_dir, revision)
            return pg_describe(conn, scratch)
        except sa.exc.SQLAlchemyError as exc:
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise OpsError(f"the reference schema could not be built: {first}") from None
        finally:
            conn.rollback()


_PG_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "i": "index",
    "I": "partitioned index",
    "c": "composite type",
    "f": "foreign table",
}


def _pg_words(line: str) -> str:
    """A description line in words ("relation v x" -> "view x")."""
    kind, _, rest = line.partition(" ")
    if kind == "relation":
        code, _, name = rest.partition(" ")
        return f"{_PG_KINDS.get(code, 'relation')} {name}"
    if kind == "function":
        code, _, name = rest.partition(" ")
        return {"p": "procedure", "a": "aggregate", "w": "window function"}.get(
            code, "function"
        ) + f" {name}"
    return line


def pg_problems(actual: set[str], reference: set[str], revision: str) -> list[str]:
    """Each object the migrations do not create, and each one they create that is missing."""
    problems = [
        f"{_pg_words(line)}: not created by the migrations ({revision})"
        for line in sorted(actual - reference)
    ]
    problems += [
        f"{_pg_words(line)}: created by the migrations but missing"
        for line in sorted(reference - actual)
    ]
    return problems
