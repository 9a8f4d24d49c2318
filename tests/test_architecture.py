"""The house rules of docs/architecture.md, held as data: which part may import which,
and how big a module or a function may grow. A forbidden import or an oversized piece of
app code fails here (run by `make test`), so the layout cannot erode unnoticed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "auditapp"

# Each part: the modules (paths below auditapp/, a trailing / for a package) it consists of.
PARTS: dict[str, tuple[str, ...]] = {
    "Web": ("web/",),
    "CLI": ("cli/",),
    "Scheduler": ("scheduler.py",),
    "Entry": ("wsgi.py",),
    "Access": ("access.py",),
    "Services": ("services/",),
    "Storage": ("storage.py",),
    "Mailer": ("mailer.py",),
    "Models": ("models/",),
    "Core": (
        "__init__.py",
        "config.py",
        "extensions.py",
        "errors.py",
        "database.py",
        "i18n.py",
    ),
}

# (importer, imported, why): imports that must never exist.
NEVER: list[tuple[str, str, str]] = [
    ("Models", "Services", "models hold data; logic lives in services"),
    ("Models", "Web", "models know no request"),
    ("Models", "Access", "models are data; permissions are decided above them"),
    ("Models", "Storage", "a row never touches files"),
    ("Services", "Web", "shared by web, CLI and scheduler: no request globals"),
    ("Services", "CLI", "services know no command line"),
    ("Services", "Scheduler", "jobs call services, not the reverse"),
    ("Services", "Entry", "nothing calls the WSGI entry"),
    ("Access", "Services", "predicates decide from the objects given, they query nothing"),
    ("Access", "Web", "the rules are the same for web, CLI and API"),
    ("Storage", "Models", "the store knows bytes, not tables"),
    ("Storage", "Services", "the store knows bytes, not the domain"),
    ("Mailer", "Models", "the mailer sends messages it is given"),
    ("Mailer", "Services", "the mailer sends messages it is given"),
    ("CLI", "Web", "the CLI does not go through views"),
    ("Scheduler", "Web", "jobs do not go through views"),
    ("Scheduler", "CLI", "jobs do not go through commands"),
    ("Web", "CLI", "views do not go through commands"),
    ("Web", "Scheduler", "web workers never run scheduled jobs"),
    ("Core", "Web", "the core is below everything (create_app wires the web lazily)"),
]
# The factory is the one place that wires the parts together (imports inside create_app).
WIRING = {"__init__.py"}

MAX_MODULE_LINES = 800
MAX_FUNCTION_LINES = 80


def _part_of(relative: str) -> str | None:
    for part, members in PARTS.items():
        for member in members:
            if relative == member or (member.endswith("/") and relative.startswith(member)):
                return part
    return None


def _module_file(module: str) -> str | None:
    """auditapp.services.export → 'services/export/__init__.py' (or the .py file)."""
    if module != "auditapp" and not module.startswith("auditapp."):
        return None
    rest = module.split(".")[1:]
    if not rest:
        return "__init__.py"
    base = "/".join(rest)
    if (APP / base).is_dir():
        return base + "/__init__.py"
    return base + ".py"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of an auditapp module in a file, nested ones too."""
    tree = ast.parse(path.read_text("utf-8"))
    package = ".".join(["auditapp", *path.relative_to(APP).parent.parts])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            # `from auditapp import web` imports the module auditapp.web itself.
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return found


def _app_files() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if "translations" not in p.parts)


def test_every_module_belongs_to_a_part():
    """A new module lands in a room the rules know (else say where it belongs here)."""
    strays = [
        str(p.relative_to(APP)) for p in _app_files() if not _part_of(str(p.relative_to(APP)))
    ]
    assert strays == []


def test_no_forbidden_imports():
    """No part imports a part it must never import (the list above, with the reasons)."""
    never = {(a, b): why for a, b, why in NEVER}
    broken = []
    for path in _app_files():
        relative = str(path.relative_to(APP))
        if relative in WIRING:
            continue
        importer = _part_of(relative)
        for line, module in _imports(path):
            target = _module_file(module)
            if target is None or not (APP / target).exists():
                continue
            imported = _part_of(target)
            if imported and (importer, imported) in never:
                why = never[(importer, imported)]
                broken.append(
                    f"{relative}:{line} imports {module} ({importer} → {imported}: {why})"
                )
    assert broken == []


def test_the_rules_catch_a_forbidden_import(tmp_path):
    """The checker itself works: a model importing a service is reported."""
    fake = tmp_path / "auditapp"
    (fake / "models").mkdir(parents=True)
    (fake / "services").mkdir()
    (fake / "services" / "__init__.py").write_text("")
    (fake / "models" / "bad.py").write_text("def f():\n    from auditapp.services import x\n")
    globals()["APP"], saved = fake, APP
    try:
        with pytest.raises(AssertionError, match="models/bad.py:2 imports auditapp.services"):
            test_no_forbidden_imports()
    finally:
        globals()["APP"] = saved


def test_modules_stay_small():
    """No app module passes ~800 lines: a domain that grows becomes a package."""
    big = [
        f"{p.relative_to(APP)}: {n} lines"
        for p in _app_files()
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert big == []


def test_functions_stay_short():
    """No function passes 80 lines: a long one is split along its steps."""
    long = []
    for path in _app_files():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(APP)}:{node.lineno} {node.name}: {lines}")
    assert long == []
