"""What a control in a catalog file must look like: the fields, their forms and the checker.

`ControlChecker` checks one control mapping loaded by `yaml_lines.parse` and reports each
problem with its field path and line through a callback, so `files.load_catalog` can
list every problem of every file at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auditapp.models.catalog import CATEGORIES, CategoryDef
from auditapp.services.catalog.yaml_lines import kind_of, line_of

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
REFERENCE_PATTERNS = {"policy": POLICY_PATTERN, "guideline": GUIDELINE_PATTERN, "act": ACT_PATTERN}
REFERENCE_EXAMPLES = {
    "policy": "第2条の2(3)①",
    "guideline": "通則編 10-3(1)",
    "act": "法第26条第1項",
}
METHOD_PROFILES = ("standard", "sme")
LANGUAGES = ("ja", "en")

CATEGORY_BY_ID = {c.id: c for c in CATEGORIES}
# Writers copy the Japanese forms from documents; say so instead of only "does not match".
_FULL_WIDTH = set("（）０１２３４５６７８９")


@dataclass(frozen=True)
class Text:
    """A bilingual text: Japanese first, English beside it."""

    ja: str
    en: str


# How a checker reports a problem: (line, control id, field path, problem).
Report = Callable[[int | None, str | None, str | None, str], None]


class ControlChecker:
    """Checks one control mapping, reporting each problem with its field path and line."""

    def __init__(self, file_name: str, raw: dict, report: Report):
        self.file_name = file_name
        self.raw = raw
        self.report = report
        raw_id = raw.get("id")
        self.control_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
        self.failed = False

    def error(self, line: int | None, field_name: str | None, problem: str) -> None:
        """Report one problem of this control (it will not be kept)."""
        self.failed = True
        self.report(line, self.control_id, field_name, problem)

    def check(self, file_category: CategoryDef | None) -> dict[str, Any] | None:
        """The control's checked values if every field is valid, else None (each problem is
        reported): the keyword arguments of a ControlDef but its source file."""
        raw = self.raw
        for key in raw:
            if key not in FIELDS and key not in OPTIONAL_FIELDS:
                self.error(
                    line_of(raw, key),
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
        values["attributes"] = self._attributes()
        return None if self.failed else values

    def _id(self) -> str | None:
        value = self.raw["id"]
        line = line_of(self.raw, "id")
        if not isinstance(value, str):
            self.error(line, "id", f"must be a string, not {kind_of(value)}")
            return None
        if not re.fullmatch(ID_PATTERN, value):
            self.error(line, "id", f"{value!r} does not match {ID_PATTERN} (e.g. 'LOC-01')")
            return None
        return value

    def _category(self, file_category: CategoryDef | None) -> str | None:
        value = self.raw["category"]
        line = line_of(self.raw, "category")
        if not isinstance(value, str) or value not in CATEGORY_BY_ID:
            known = ", ".join(CATEGORY_BY_ID)
            self.error(line, "category", f"unknown category {value!r}; known: {known}")
            return None
        if file_category is not None and value != file_category.id:
            self.error(
                line,
                "category",
                f"{value!r} does not belong in {self.file_name}, which holds only "
                f"{file_category.id!r} controls (move it to "
                f"{CATEGORY_BY_ID[value].file_name} or a local-*.yaml file)",
            )
            return None
        return value

    def _frequency(self) -> str | None:
        value = self.raw["frequency"]
        if not isinstance(value, str) or value not in FREQUENCIES:
            self.error(
                line_of(self.raw, "frequency"),
                "frequency",
                f"unknown frequency {value!r}; known: {', '.join(FREQUENCIES)}",
            )
            return None
        return value

    def _evidence_required(self) -> bool | None:
        value = self.raw["evidence_required"]
        if not isinstance(value, bool):
            self.error(
                line_of(self.raw, "evidence_required"),
                "evidence_required",
                f"must be true or false, not {value!r}",
            )
            return None
        return value

    def _text_field(self, name: str, limit: int = TEXT_MAX_CHARS) -> Text | None:
        """The {ja, en} pair of a top-level field of the control."""
        return self._text(self.raw[name], line_of(self.raw, name), name, limit)

    def _text(
        self, value: Any, line: int | None, path: str, limit: int = TEXT_MAX_CHARS
    ) -> Text | None:
        """A {ja, en} pair: both keys, non-empty strings (after strip), at most `limit` chars."""
        if not isinstance(value, dict):
            self.error(line, path, f"must be a mapping {{ja: ..., en: ...}}, not {kind_of(value)}")
            return None
        ok = True
        for key in value:
            if key not in LANGUAGES:
                self.error(line_of(value, key, line), f"{path}.{key}", f"unknown key {key!r}")
                ok = False
        texts = {}
        for lang in LANGUAGES:
            field_path = f"{path}.{lang}"
            if lang not in value:
                self.error(line_of(value, default=line), field_path, "is missing")
                ok = False
                continue
            text = value[lang]
            lang_line = line_of(value, lang, line)
            if text is None or (isinstance(text, str) and not text.strip()):
                self.error(lang_line, field_path, "is empty")
            elif not isinstance(text, str):
                self.error(lang_line, field_path, f"must be a string, not {kind_of(text)}")
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
        line = line_of(self.raw, "references")
        if not isinstance(value, dict):
            self.error(
                line,
                "references",
                f"must be a mapping of policy, guideline, act, not {kind_of(value)}",
            )
            return None
        ok = True
        for key in value:
            if key not in REFERENCE_KINDS:
                self.error(
                    line_of(value, key),
                    f"references.{key}",
                    f"unknown key {key!r}; known: {', '.join(REFERENCE_KINDS)}",
                )
                ok = False
        references = {}
        for ref_kind in REFERENCE_KINDS:
            items = self._reference_list(value, ref_kind)
            ok = ok and items is not None
            references[ref_kind] = items
        return references if ok else None

    def _reference_list(self, value: dict, ref_kind: str) -> tuple[str, ...] | None:
        """One kind of reference: a list of strings in that kind's form (act may be absent)."""
        path = f"references.{ref_kind}"
        required = ref_kind != "act"
        if ref_kind not in value:
            if required:
                self.error(value.line, path, "is missing")
                return None
            return ()
        items = value[ref_kind]
        kind_line = line_of(value, ref_kind)
        if items is None:
            items = []
        if not isinstance(items, list):
            self.error(kind_line, path, f"must be a list of strings, not {kind_of(items)}")
            return None
        if required and not items:
            self.error(kind_line, path, "must not be empty")
            return None
        ok = True
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            item_line = line_of(items, index, kind_line)
            if not isinstance(item, str):
                self.error(item_line, item_path, f"must be a string, not {kind_of(item)}")
                ok = False
            elif not re.fullmatch(REFERENCE_PATTERNS[ref_kind], item):
                hint = "; use ASCII ( ) and digits 0-9" if _FULL_WIDTH & set(item) else ""
                example = REFERENCE_EXAMPLES[ref_kind]
                self.error(
                    item_line,
                    item_path,
                    f"{item!r} does not match {REFERENCE_PATTERNS[ref_kind]} "
                    f"(e.g. {example!r}){hint}",
                )
                ok = False
        return tuple(items) if ok else None

    def _methods(self) -> dict[str, Text] | None:
        value = self.raw["methods"]
        line = line_of(self.raw, "methods")
        if not isinstance(value, dict):
            self.error(
                line, "methods", f"must be a mapping of standard and sme, not {kind_of(value)}"
            )
            return None
        ok = True
        for key in value:
            if key not in METHOD_PROFILES:
                self.error(
                    line_of(value, key),
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
            methods[profile] = self._text(value[profile], line_of(value, profile), path)
            ok = ok and methods[profile] is not None
        return methods if ok else None

    def _evidence_expected(self) -> tuple[Text, ...] | None:
        value = self.raw["evidence_expected"]
        line = line_of(self.raw, "evidence_expected")
        if not isinstance(value, list):
            self.error(
                line, "evidence_expected", f"must be a list of {{ja, en}}, not {kind_of(value)}"
            )
            return None
        if not value:
            self.error(line, "evidence_expected", "must not be empty")
            return None
        items = [
            self._text(item, line_of(value, index, line), f"evidence_expected[{index}]")
            for index, item in enumerate(value)
        ]
        return tuple(items) if all(item is not None for item in items) else None

    def _attributes(self) -> dict:
        """Organization-specific fields: any JSON-like data under string keys."""
        value = self.raw.get("attributes")
        if value is None:
            return {}
        line = line_of(self.raw, "attributes")
        if not isinstance(value, dict):
            self.error(line, "attributes", f"must be a mapping, not {kind_of(value)}")
            return {}
        return self._plain(value, line, "attributes")

    def _plain(self, value: Any, line: int | None, path: str) -> Any:
        """A plain copy of `value` (mapping, list, text, number, bool, null); reports the rest."""
        if isinstance(value, dict):
            plain = {}
            for key, item in value.items():
                item_line = line_of(value, key, line)
                if not isinstance(key, str):
                    self.error(item_line, path, f"key {key!r} must be a string")
                    continue
                plain[key] = self._plain(item, item_line, f"{path}.{key}")
            return plain
        if isinstance(value, list):
            return [
                self._plain(item, line_of(value, index, line), f"{path}[{index}]")
                for index, item in enumerate(value)
            ]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        self.error(line, path, "must be text, a number, true/false, a list or a mapping")
        return None
