"""Reading and validating the control catalog files (controls/*.yaml): no database, no Flask.

`load_catalog` never raises for bad content: every problem becomes a `CatalogError` naming
the file, line, control id and field, so `auditapp catalog validate` can list them all at
once and `sync` can refuse a catalog that is not `ok`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditapp.models.catalog import CATEGORIES, CategoryDef
from auditapp.services.catalog import yaml_lines
from auditapp.services.catalog.rules import (
    CATEGORY_BY_ID,
    FREQUENCIES,
    METHOD_PROFILES,
    REFERENCE_KINDS,
    ControlChecker,
    Text,
)
from auditapp.services.catalog.yaml_lines import kind_of, line_of

__all__ = [
    "CATEGORIES",
    "FREQUENCIES",
    "Catalog",
    "CatalogError",
    "CategoryDef",
    "ControlDef",
    "Text",
    "load_catalog",
    "policy_items_covered",
]

_CATEGORY_BY_FILE_STEM = {Path(c.file_name).stem: c for c in CATEGORIES}
_CATEGORY_FILE_RE = re.compile(r"[0-9]{2}-.+\.ya?ml")
_LOCAL_FILE_RE = re.compile(r"local-.+\.ya?ml")


@dataclass(frozen=True)
class ControlDef:
    """One control as written in a catalog file, validated."""

    id: str
    category: str
    title: Text
    requirement: Text
    references: dict[str, tuple[str, ...]]
    frequency: str
    methods: dict[str, Text]
    evidence_expected: tuple[Text, ...]
    test_procedure: Text
    evidence_required: bool
    source_file: str
    attributes: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The control as plain JSON-able data with the same fields as the YAML."""

        def text(t: Text) -> dict[str, str]:
            return {"ja": t.ja, "en": t.en}

        return {
            "id": self.id,
            "category": self.category,
            "title": text(self.title),
            "requirement": text(self.requirement),
            "references": {kind: list(self.references[kind]) for kind in REFERENCE_KINDS},
            "frequency": self.frequency,
            "methods": {profile: text(self.methods[profile]) for profile in METHOD_PROFILES},
            "evidence_expected": [text(t) for t in self.evidence_expected],
            "test_procedure": text(self.test_procedure),
            "evidence_required": self.evidence_required,
            "attributes": copy.deepcopy(self.attributes),
        }

    def content_hash(self) -> str:
        """SHA-256 of the control's content (every field but source_file): its text version."""
        return _sha256(self.to_dict())


@dataclass
class CatalogError:
    """One problem in a catalog file; the parts not known are None."""

    file: str
    line: int | None
    control_id: str | None
    field: str | None
    problem: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        parts = [where, self.control_id, self.field, self.problem]
        return ": ".join(p for p in parts if p is not None)


@dataclass
class Catalog:
    """The controls of all files read, the errors found, and the catalog version."""

    controls: list[ControlDef]
    errors: list[CatalogError]
    version: str
    files: list[str]

    @property
    def ok(self) -> bool:
        """True when no file had any problem."""
        return not self.errors


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog folder (every *.yaml/*.yml but README.md) or a single file.

    Folder files are read as NN-*.yaml in name order, then local-*.yaml, then anything else
    (which is an error). Controls come sorted by category order, then by file order; only
    controls without errors are kept, and the version covers those.
    """
    path = Path(path)
    errors: list[CatalogError] = []
    if path.is_dir():
        paths = sorted(
            (p for p in path.iterdir() if _is_catalog_file(p)), key=lambda p: _file_rank(p.name)
        )
        if not paths:
            errors.append(CatalogError(str(path), None, None, None, "no *.yaml catalog files"))
    elif path.is_file():
        paths = [path]
    else:
        errors.append(CatalogError(str(path), None, None, None, "no such file or folder"))
        paths = []

    controls: list[ControlDef] = []
    seen_ids: dict[str, str] = {}  # id -> "file:line" of its first definition
    for file_path in paths:
        controls.extend(_load_file(file_path, seen_ids, errors))
    controls.sort(key=lambda c: CATEGORY_BY_ID[c.category].order)
    version = _sha256(sorted([c.id, c.content_hash()] for c in controls))
    return Catalog(controls, errors, version, [p.name for p in paths])


def policy_items_covered(catalog: Catalog) -> dict[str, list[str]]:
    """Each policy reference cited by the catalog, in article order, with the citing ids."""
    covered: dict[str, list[str]] = {}
    for control in catalog.controls:
        for reference in control.references["policy"]:
            covered.setdefault(reference, []).append(control.id)
    return {ref: covered[ref] for ref in sorted(covered, key=_policy_sort_key)}


def _sha256(data: Any) -> str:
    """SHA-256 hex of the canonical JSON of `data` (sorted keys, UTF-8, no spaces)."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _policy_sort_key(reference: str) -> tuple:
    """Article, sub-article, item and circled number, so 第2条の2(3)① sorts before 第13条."""
    match = re.fullmatch(r"第([0-9]+)条(?:の([0-9]+))?(?:\(([0-9]+)\))?([①-⑳]?)", reference)
    if not match:
        return (1, reference)
    article, sub, item, circled = match.groups()
    circled_number = ord(circled) - ord("①") + 1 if circled else 0
    return (0, int(article), int(sub or 0), int(item or 0), circled_number)


def _is_catalog_file(path: Path) -> bool:
    """A *.yaml or *.yml file of the folder (README.md and dot files are not)."""
    # Dot files are editor leftovers (.#01-basic-policy.yaml), not catalog files.
    return path.is_file() and path.suffix in (".yaml", ".yml") and not path.name.startswith(".")


def _file_rank(name: str) -> tuple[int, str]:
    """Reading order: category files, then local files, then anything else; each by name."""
    if _CATEGORY_FILE_RE.fullmatch(name):
        return (0, name)
    if _LOCAL_FILE_RE.fullmatch(name):
        return (1, name)
    return (2, name)


# --- one file: read, decode, parse, check ------------------------------------------------


class _FileRefused(Exception):
    """A step found the file unusable as a whole; its problem is already reported."""


@dataclass
class _FileReport:
    """Where the problems of one file go: the shared list, each naming the file."""

    name: str
    errors: list[CatalogError]

    def file_error(self, line: int | None, problem: str, field_name: str | None = None) -> None:
        """A problem of the file itself (not of one control)."""
        self.errors.append(CatalogError(self.name, line, None, field_name, problem))

    def control_error(
        self, line: int | None, control_id: str | None, field_name: str | None, problem: str
    ) -> None:
        """A problem of one control of the file."""
        self.errors.append(CatalogError(self.name, line, control_id, field_name, problem))

    def refuse(self, line: int | None, problem: str, field_name: str | None = None):
        """Report a problem that ends the reading of this file, and stop."""
        self.file_error(line, problem, field_name)
        return _FileRefused(problem)


def _load_file(
    path: Path, seen_ids: dict[str, str], errors: list[CatalogError]
) -> list[ControlDef]:
    """Read, decode, parse and check one file; returns the controls without errors."""
    report = _FileReport(path.name, errors)
    file_category = _file_category(path, report)
    try:
        text = _decode(_read(path, report), report)
        items = _control_items(_parse(text, report), report)
    except _FileRefused:
        return []
    return _check_controls(items, file_category, seen_ids, report)


def _file_category(path: Path, report: _FileReport) -> CategoryDef | None:
    """The category a NN-*.yaml file holds (None for local files); reports a bad name."""
    if _CATEGORY_FILE_RE.fullmatch(path.name):
        category = _CATEGORY_BY_FILE_STEM.get(path.stem)
        if category is None:
            known = ", ".join(c.file_name for c in CATEGORIES)
            report.file_error(None, f"unknown category file name; the category files are {known}")
        return category
    if not _LOCAL_FILE_RE.fullmatch(path.name):
        report.file_error(
            None,
            "file name must be NN-<category>.yaml (a category file) "
            "or local-<name>.yaml (the organization's own controls)",
        )
    return None


def _read(path: Path, report: _FileReport) -> bytes:
    """The file's bytes."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise report.refuse(None, f"cannot read the file: {exc.strerror or exc}") from exc


def _decode(raw: bytes, report: _FileReport) -> str:
    """The file's text: UTF-8, a byte-order mark allowed."""
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise report.refuse(raw.count(b"\n", 0, exc.start) + 1, "not valid UTF-8") from exc


def _parse(text: str, report: _FileReport) -> Any:
    """The YAML document (keys written twice are reported, not fatal)."""
    try:
        data, duplicate_keys = yaml_lines.parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise report.refuse(
            mark.line + 1 if mark else None, f"YAML syntax error: {detail}"
        ) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problem = f"YAML syntax error: character U+{exc.character:04X} is not allowed"
        raise report.refuse(line, problem) from exc
    except yaml.YAMLError as exc:
        raise report.refuse(None, f"YAML syntax error: {exc}") from exc
    for key, line in duplicate_keys:
        report.file_error(
            line, "duplicate key; the later value would replace the earlier", str(key)
        )
    return data


def _control_items(data: Any, report: _FileReport) -> list:
    """The list under the file's only key, `controls`."""
    if data is None:
        raise report.refuse(1, "the file is empty; expected a mapping with key 'controls'")
    if not isinstance(data, dict):
        raise report.refuse(
            line_of(data, default=1),
            f"top level must be a mapping with key 'controls', not {kind_of(data)}",
        )
    for key in data:
        if key != "controls":
            report.file_error(
                line_of(data, key), f"unknown key {key!r}; a file has only 'controls'", str(key)
            )
    if "controls" not in data:
        raise report.refuse(data.line, "is missing", "controls")
    items = data["controls"]
    if not isinstance(items, list):
        problem = f"must be a list of controls, not {kind_of(items)}"
        raise report.refuse(line_of(data, "controls"), problem, "controls")
    return items


def _check_controls(
    items: list, file_category: CategoryDef | None, seen_ids: dict[str, str], report: _FileReport
) -> list[ControlDef]:
    """Check each control of the file and its id against the files read before."""
    controls = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            report.file_error(
                line_of(items, index),
                f"must be a mapping (one control), not {kind_of(item)}",
                f"controls[{index}]",
            )
            continue
        checker = ControlChecker(report.name, item, report.control_error)
        values = checker.check(file_category)
        control_id = checker.control_id
        if control_id is not None and isinstance(item.get("id"), str):
            first = seen_ids.get(control_id)
            if first is not None:
                checker.error(line_of(item, "id"), "id", f"duplicate id; also defined in {first}")
                continue
            seen_ids[control_id] = f"{report.name}:{line_of(item, 'id')}"
        if values is not None and not checker.failed:
            controls.append(ControlDef(**values, source_file=report.name))
    return controls
