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
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class CategoryDef:
    """One of the eight categories of the catalog, tied to a clause of the privacy policy."""

    id: str
    order: int
    policy_clause: str
    title_ja: str
    title_en: str

    @property
    def file_name(self) -> str:
        """The category file that holds this category's controls, e.g. 01-basic-policy.yaml."""
        return f"{self.order:02d}-{self.id.replace('_', '-')}.yaml"


CATEGORIES: list[CategoryDef] = [
    CategoryDef("basic_policy", 1, "第2条の2(1)", "基本方針の策定", "Basic policy"),
    CategoryDef(
        "handling_rules",
        2,
        "第2条の2(2)",
        "個人データの取扱いに係る規律の整備",
        "Rules for handling personal data",
    ),
    CategoryDef(
        "organizational", 3, "第2条の2(3)", "組織的安全管理措置", "Organizational safeguards"
    ),
    CategoryDef("human", 4, "第2条の2(4)", "人的安全管理措置", "Human safeguards"),
    CategoryDef("physical", 5, "第2条の2(5)", "物理的安全管理措置", "Physical safeguards"),
    CategoryDef("technical", 6, "第2条の2(6)", "技術的安全管理措置", "Technical safeguards"),
    CategoryDef(
        "external_environment",
        7,
        "第2条の2(7)",
        "外的環境の把握",
        "Understanding the external environment",
    ),
    CategoryDef(
        "related_duties", 8, "第3条・第4条・第7条", "関連する継続的義務", "Related recurring duties"
    ),
]
FREQUENCIES = ("monthly", "quarterly", "semiannual", "annual", "event")

ID_PATTERN = r"^[A-Z]{2,5}-[0-9]{2,3}$"
POLICY_PATTERN = r"^第[0-9]+条(の[0-9]+)?(\([0-9]+\))?[①-⑳]?$"
GUIDELINE_PATTERN = r"^通則編 [0-9]+(-[0-9]+)*(\([0-9]+\))?$"
ACT_PATTERN = r"^法第[0-9]+条(第[0-9]+項)?$"
TITLE_MAX_CHARS = 200
TEXT_MAX_CHARS = 2000

FIELDS = (
    "id",
    "category",
    "title",
    "requirement",
    "references",
    "frequency",
    "methods",
    "evidence_expected",
    "test_procedure",
    "evidence_required",
)
OPTIONAL_FIELDS = ("attributes",)
REFERENCE_KINDS = ("policy", "guideline", "act")
METHOD_PROFILES = ("standard", "sme")
LANGUAGES = ("ja", "en")

_CATEGORY_BY_ID = {c.id: c for c in CATEGORIES}
_CATEGORY_BY_FILE_STEM = {Path(c.file_name).stem: c for c in CATEGORIES}
_CATEGORY_FILE_RE = re.compile(r"[0-9]{2}-.+\.ya?ml")
_LOCAL_FILE_RE = re.compile(r"local-.+\.ya?ml")
# Writers copy the Japanese forms from documents; say so instead of only "does not match".
_FULL_WIDTH = set("（）０１２３４５６７８９")


@dataclass(frozen=True)
class Text:
    """A bilingual text: Japanese first, English beside it."""

    ja: str
    en: str


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
    controls.sort(key=lambda c: _CATEGORY_BY_ID[c.category].order)
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


# --- YAML with line numbers -------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Mapping(dict):
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int
    lines: dict


class _Sequence(list):
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int
    lines: list[int]


class _Loader(yaml.SafeLoader):
    """SafeLoader with line numbers, YAML 1.2 booleans (only true/false) and dates as text.

    YAML 1.1 reads an unquoted `yes`, `no` or `on` as a boolean, so `en: No` would silently
    become False; here such values stay strings and fail validation with a clear message.
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Any, int]] = []


_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode):
    """Build a _Mapping with lines, noting keys written twice (merged `<<` keys excepted)."""
    data = _Mapping()
    data.line = node.start_mark.line + 1
    data.lines = {}
    yield data
    own_keys = {id(key_node) for key_node, _ in node.value}
    loader.flatten_mapping(node)  # resolves `<<` merge keys; own keys may then override
    own_seen: set = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                "found unhashable key",
                key_node.start_mark,
            )
        line = key_node.start_mark.line + 1
        if id(key_node) in own_keys:
            if key in own_seen:
                loader.duplicate_keys.append((key, line))
            own_seen.add(key)
        data[key] = loader.construct_object(value_node)
        data.lines[key] = line


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode):
    """Build a _Sequence with the line of each item."""
    data = _Sequence()
    data.line = node.start_mark.line + 1
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_object(item) for item in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


def _parse(text: str) -> tuple[Any, list[tuple[Any, int]]]:
    """The document in `text` and the keys written twice in a mapping; raises yaml.YAMLError."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicate_keys
    finally:
        loader.dispose()


def _line(container: Any, key: Any = None, default: int | None = None) -> int | None:
    """The line of `key` inside a loaded mapping or sequence, else of the container itself."""
    lines = getattr(container, "lines", None)
    if key is not None and lines is not None:
        if isinstance(lines, dict) and key in lines:
            return lines[key]
        if isinstance(lines, list) and isinstance(key, int) and key < len(lines):
            return lines[key]
    return getattr(container, "line", default)


def _kind(value: Any) -> str:
    """How a YAML writer would call the type of a value."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --- one file ----------------------------------------------------------------------------


def _load_file(
    path: Path, seen_ids: dict[str, str], errors: list[CatalogError]
) -> list[ControlDef]:
    """Parse one file and check its controls; returns the controls without errors."""
    name = path.name

    def file_error(line: int | None, problem: str, field_name: str | None = None) -> None:
        errors.append(CatalogError(name, line, None, field_name, problem))

    file_category = None
    stem_category = _CATEGORY_BY_FILE_STEM.get(path.stem)
    if _CATEGORY_FILE_RE.fullmatch(name):
        if stem_category is None:
            known = ", ".join(c.file_name for c in CATEGORIES)
            file_error(None, f"unknown category file name; the category files are {known}")
        file_category = stem_category
    elif not _LOCAL_FILE_RE.fullmatch(name):
        file_error(
            None,
            "file name must be NN-<category>.yaml (a category file) "
            "or local-<name>.yaml (the organization's own controls)",
        )

    try:
        raw = path.read_bytes()
    except OSError as exc:
        file_error(None, f"cannot read the file: {exc.strerror or exc}")
        return []
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        file_error(raw.count(b"\n", 0, exc.start) + 1, "not valid UTF-8")
        return []

    try:
        data, duplicate_keys = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = "; ".join(str(p) for p in (exc.context, exc.problem) if p)
        file_error(mark.line + 1 if mark else None, f"YAML syntax error: {detail}")
        return []
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        file_error(line, f"YAML syntax error: character U+{exc.character:04X} is not allowed")
        return []
    except yaml.YAMLError as exc:
        file_error(None, f"YAML syntax error: {exc}")
        return []

    for key, line in duplicate_keys:
        file_error(line, "duplicate key; the later value would replace the earlier", str(key))

    if data is None:
        file_error(1, "the file is empty; expected a mapping with key 'controls'")
        return []
    if not isinstance(data, dict):
        file_error(
            _line(data, default=1),
            f"top level must be a mapping with key 'controls', not {_kind(data)}",
        )
        return []
    for key in data:
        if key != "controls":
            file_error(
                _line(data, key), f"unknown key {key!r}; a file has only 'controls'", str(key)
            )
    if "controls" not in data:
        file_error(data.line, "is missing", "controls")
        return []
    items = data["controls"]
    if not isinstance(items, list):
        problem = f"must be a list of controls, not {_kind(items)}"
        file_error(_line(data, "controls"), problem, "controls")
        return []

    controls = []
    for index, item in enumerate(items):
        line = _line(items, index)
        if not isinstance(item, dict):
            file_error(
                line, f"must be a mapping (one control), not {_kind(item)}", f"controls[{index}]"
            )
            continue
        checker = _ControlChecker(name, item, errors)
        control = checker.check(file_category)
        control_id = checker.control_id
        if control_id is not None and isinstance(item.get("id"), str):
            first = seen_ids.get(control_id)
            if first is not None:
                checker.error(_line(item, "id"), "id", f"duplicate id; also defined in {first}")
                continue
            seen_ids[control_id] = f"{name}:{_line(item, 'id')}"
        if control is not None and not checker.failed:
            controls.append(control)
    return controls


class _ControlChecker:
    """Checks one control mapping, reporting each problem with its field path and line."""

    def __init__(self, file_name: str, raw: dict, errors: list[CatalogError]):
        self.file_name = file_name
        self.raw = raw
        self.errors = errors
        raw_id = raw.get("id")
        self.control_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
        self.failed = False

    def error(self, line: int | None, field_name: str | None, problem: str) -> None:
        self.failed = True
        self.errors.append(CatalogError(self.file_name, line, self.control_id, field_name, problem))

    def check(self, file_category: CategoryDef | None) -> ControlDef | None:
        """The control if every field is valid, else None (the errors are recorded)."""
        raw = self.raw
        for key in raw:
            if key not in FIELDS and key not in OPTIONAL_FIELDS:
                self.error(
                    _line(raw, key),
                    str(key),
                    f"unknown key {key!r}; put organization-specific fields under 'attributes'",
                )
        for name in FIELDS:
            if name not in raw:
                self.error(raw.line, name, "is missing")

        checks = {
            "id": self._id,
            "category": lambda: self._category(file_category),
            "title": lambda: self._text_field("title", TITLE_MAX_CHARS),
            "requirement": lambda: self._text_field("requirement"),
            "references": self._references,
            "frequency": self._frequency,
            "methods": self._methods,
            "evidence_expected": self._evidence_expected,
            "test_procedure": lambda: self._text_field("test_procedure"),
            "evidence_required": self._evidence_required,
        }
        values = {name: check() for name, check in checks.items() if name in raw}
        attributes = self._attributes()
        if self.failed:
            return None
        return ControlDef(**values, source_file=self.file_name, attributes=attributes)

    def _id(self) -> str | None:
        value = self.raw["id"]
        line = _line(self.raw, "id")
        if not isinstance(value, str):
            self.error(line, "id", f"must be a string, not {_kind(value)}")
            return None
        if not re.fullmatch(ID_PATTERN, value):
            self.error(line, "id", f"{value!r} does not match {ID_PATTERN} (e.g. 'LOC-01')")
            return None
        return value

    def _category(self, file_category: CategoryDef | None) -> str | None:
        value = self.raw["category"]
        line = _line(self.raw, "category")
        if not isinstance(value, str) or value not in _CATEGORY_BY_ID:
            known = ", ".join(_CATEGORY_BY_ID)
            self.error(line, "category", f"unknown category {value!r}; known: {known}")
            return None
        if file_category is not None and value != file_category.id:
            self.error(
                line,
                "category",
                f"{value!r} does not belong in {self.file_name}, which holds only "
                f"{file_category.id!r} controls (move it to "
                f"{_CATEGORY_BY_ID[value].file_name} or a local-*.yaml file)",
            )
            return None
        return value

    def _frequency(self) -> str | None:
        value = self.raw["frequency"]
        if not isinstance(value, str) or value not in FREQUENCIES:
            self.error(
                _line(self.raw, "frequency"),
                "frequency",
                f"unknown frequency {value!r}; known: {', '.join(FREQUENCIES)}",
            )
            return None
        return value

    def _evidence_required(self) -> bool | None:
        value = self.raw["evidence_required"]
        if not isinstance(value, bool):
            self.error(
                _line(self.raw, "evidence_required"),
                "evidence_required",
                f"must be true or false, not {value!r}",
            )
            return None
        return value

    def _text_field(self, name: str, limit: int = TEXT_MAX_CHARS) -> Text | None:
        """The {ja, en} pair of a top-level field of the control."""
        return self._text(self.raw[name], _line(self.raw, name), name, limit)

    def _text(
        self, value: Any, line: int | None, path: str, limit: int = TEXT_MAX_CHARS
    ) -> Text | None:
        """A {ja, en} pair: both keys, non-empty strings (after strip), at most `limit` chars."""
        if not isinstance(value, dict):
            self.error(line, path, f"must be a mapping {{ja: ..., en: ...}}, not {_kind(value)}")
            return None
        ok = True
        for key in value:
            if key not in LANGUAGES:
                self.error(_line(value, key, line), f"{path}.{key}", f"unknown key {key!r}")
                ok = False
        texts = {}
        for lang in LANGUAGES:
            field_path = f"{path}.{lang}"
            if lang not in value:
                self.error(_line(value, default=line), field_path, "is missing")
                ok = False
                continue
            text = value[lang]
            lang_line = _line(value, lang, line)
            if text is None or (isinstance(text, str) and not text.strip()):
                self.error(lang_line, field_path, "is empty")
            elif not isinstance(text, str):
                self.error(lang_line, field_path, f"must be a string, not {_kind(text)}")
            elif len(text.strip()) > limit:
                self.error(
                    lang_line,
                    field_path,
                    f"is {len(text.strip())} characters long; at most {limit}",
                )
            else:
                texts[lang] = text.strip()
                continue
            ok = False
        return Text(**texts) if ok else None

    def _references(self) -> dict[str, tuple[str, ...]] | None:
        value = self.raw["references"]
        line = _line(self.raw, "references")
        if not isinstance(value, dict):
            self.error(
                line,
                "references",
                f"must be a mapping of policy, guideline, act, not {_kind(value)}",
            )
            return None
        ok = True
        for key in value:
            if key not in REFERENCE_KINDS:
                self.error(
                    _line(value, key),
                    f"references.{key}",
                    f"unknown key {key!r}; known: {', '.join(REFERENCE_KINDS)}",
                )
                ok = False
        patterns = {"policy": POLICY_PATTERN, "guideline": GUIDELINE_PATTERN, "act": ACT_PATTERN}
        examples = {"policy": "第2条の2(3)①", "guideline": "通則編 10-3(1)", "act": "法第26条第1項"}
        references = {}
        for kind in REFERENCE_KINDS:
            path = f"references.{kind}"
            required = kind != "act"
            if kind not in value:
                if required:
                    self.error(value.line, path, "is missing")
                    ok = False
                references[kind] = ()
                continue
            items = value[kind]
            kind_line = _line(value, kind)
            if items is None:
                items = []
            if not isinstance(items, list):
                self.error(kind_line, path, f"must be a list of strings, not {_kind(items)}")
                ok = False
                continue
            if required and not items:
                self.error(kind_line, path, "must not be empty")
                ok = False
                continue
            for index, item in enumerate(items):
                item_path = f"{path}[{index}]"
                item_line = _line(items, index, kind_line)
                if not isinstance(item, str):
                    self.error(item_line, item_path, f"must be a string, not {_kind(item)}")
                    ok = False
                elif not re.fullmatch(patterns[kind], item):
                    hint = "; use ASCII ( ) and digits 0-9" if _FULL_WIDTH & set(item) else ""
                    self.error(
                        item_line,
                        item_path,
                        f"{item!r} does not match {patterns[kind]} (e.g. {examples[kind]!r}){hint}",
                    )
                    ok = False
            references[kind] = tuple(items)
        return references if ok else None

    def _methods(self) -> dict[str, Text] | None:
        value = self.raw["methods"]
        line = _line(self.raw, "methods")
        if not isinstance(value, dict):
            self.error(
                line, "methods", f"must be a mapping of standard and sme, not {_kind(value)}"
            )
            return None
        ok = True
        for key in value:
            if key not in METHOD_PROFILES:
                self.error(
                    _line(value, key),
                    f"methods.{key}",
                    f"unknown key {key!r}; known: {', '.join(METHOD_PROFILES)}",
                )
                ok = False
        methods = {}
        for profile in METHOD_PROFILES:
            path = f"methods.{profile}"
            if profile not in value:
                self.error(value.line, path, "is missing")
                ok = False
                continue
            methods[profile] = self._text(value[profile], _line(value, profile), path)
            ok = ok and methods[profile] is not None
        return methods if ok else None

    def _evidence_expected(self) -> tuple[Text, ...] | None:
        value = self.raw["evidence_expected"]
        line = _line(self.raw, "evidence_expected")
        if not isinstance(value, list):
            self.error(
                line, "evidence_expected", f"must be a list of {{ja, en}}, not {_kind(value)}"
            )
            return None
        if not value:
            self.error(line, "evidence_expected", "must not be empty")
            return None
        items = [
            self._text(item, _line(value, index, line), f"evidence_expected[{index}]")
            for index, item in enumerate(value)
        ]
        return tuple(items) if all(item is not None for item in items) else None

    def _attributes(self) -> dict:
        """Organization-specific fields: any JSON-like data under string keys."""
        value = self.raw.get("attributes")
        if value is None:
            return {}
        line = _line(self.raw, "attributes")
        if not isinstance(value, dict):
            self.error(line, "attributes", f"must be a mapping, not {_kind(value)}")
            return {}
        return self._plain(value, line, "attributes")

    def _plain(self, value: Any, line: int | None, path: str) -> Any:
        """A plain copy of `value` (mapping, list, text, number, bool, null); reports the rest."""
        if isinstance(value, dict):
            plain = {}
            for key, item in value.items():
                item_line = _line(value, key, line)
                if not isinstance(key, str):
                    self.error(item_line, path, f"key {key!r} must be a string")
                    continue
                plain[key] = self._plain(item, item_line, f"{path}.{key}")
            return plain
        if isinstance(value, list):
            return [
                self._plain(item, _line(value, index, line), f"{path}[{index}]")
                for index, item in enumerate(value)
            ]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        self.error(line, path, "must be text, a number, true/false, a list or a mapping")
        return None
