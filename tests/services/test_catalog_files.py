"""Tests of the catalog file loader: the shipped catalog, hashes and versions, and bad files."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import yaml

from auditapp.services.catalog.files import (
    CATEGORIES,
    FREQUENCIES,
    CatalogError,
    Text,
    load_catalog,
    policy_items_covered,
)

CONTROLS = Path(__file__).resolve().parents[2] / "controls"

POLICY_ITEMS = [
    "第2条の2(1)",
    "第2条の2(2)",
    "第2条の2(3)①",
    "第2条の2(3)②",
    "第2条の2(4)①",
    "第2条の2(4)②",
    "第2条の2(5)①",
    "第2条の2(5)②",
    "第2条の2(6)①",
    "第2条の2(6)②",
    "第2条の2(7)",
]

# One valid control; the line of each field is fixed, so the tests can name it:
# 2 id, 3 category, 4 title, 5 requirement, 6 references, 7 policy, 8 guideline,
# 9 frequency, 10 methods, 11 standard, 12 sme, 13 evidence_expected, 14 its item,
# 15 test_procedure, 16 evidence_required.
CONTROL = """\
  - id: LOC-01
    category: technical
    title: {ja: "クラウド管理者の多要素認証", en: "MFA for cloud administrators"}
    requirement: {ja: "管理者は多要素認証を使う。", en: "Administrators use MFA."}
    references:
      policy: ["第2条の2(6)①"]
      guideline: ["通則編 10-6(2)"]
    frequency: quarterly
    methods:
      standard: {ja: "多要素認証を必須にする。", en: "Enforce MFA."}
      sme: {ja: "多要素認証を必須にする。", en: "Enforce MFA."}
    evidence_expected:
      - {ja: "管理者一覧と設定状況", en: "Administrator list with MFA status"}
    test_procedure: {ja: "全アカウントで有効なら有効。", en: "Pass if every account uses MFA."}
    evidence_required: true
"""


def catalog_file(*controls: str) -> str:
    """A catalog file holding the given controls (each a YAML list item)."""
    return "controls:\n" + "".join(controls)


def control(old: str = "", new: str = "") -> str:
    """The valid control with `old` replaced by `new` (which must occur exactly once)."""
    text = CONTROL
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def write(folder: Path, name: str, content: str | bytes) -> Path:
    """Write a catalog file into `folder`, UTF-8 unless bytes are given."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """The errors of loading `path`, as the CLI prints them."""
    return [str(e) for e in load_catalog(path).errors]


@pytest.fixture(scope="module")
def shipped():
    """The catalog shipped in controls/."""
    return load_catalog(CONTROLS)


# --- the shipped catalog -------------------------------------------------------------------


def test_shipped_catalog_loads_without_errors(shipped):
    """controls/ loads with no error, 25 to 40 controls, from the eight category files."""
    assert shipped.errors == []
    assert shipped.ok
    assert 25 <= len(shipped.controls) <= 40
    assert shipped.files == [c.file_name for c in CATEGORIES]
    assert re.fullmatch(r"[0-9a-f]{64}", shipped.version)


def test_shipped_controls_sit_in_their_category_file_in_policy_order(shipped):
    """Each control comes from its category's file, and the list follows the category order."""
    order = {c.id: c.order for c in CATEGORIES}
    for c in shipped.controls:
        assert c.source_file == next(k.file_name for k in CATEGORIES if k.id == c.category)
        assert c.frequency in FREQUENCIES
    orders = [order[c.category] for c in shipped.controls]
    assert orders == sorted(orders)
    assert len({c.id for c in shipped.controls}) == len(shipped.controls)


@pytest.mark.parametrize("item", POLICY_ITEMS)
def test_every_policy_item_is_covered(shipped, item):
    """Every item (1)-(7) of 第2条の2 and each ①② is cited by at least one control."""
    assert policy_items_covered(shipped).get(item), f"no control cites {item}"


def test_policy_items_covered_lists_citing_ids_in_article_order(shipped):
    """policy_items_covered maps each cited reference to its controls, in article order."""
    covered = policy_items_covered(shipped)
    for reference, ids in covered.items():
        for control_id in ids:
            cited = next(c for c in shipped.controls if c.id == control_id)
            assert reference in cited.references["policy"]
    keys = list(covered)
    assert keys.index("第2条の2(3)①") < keys.index("第2条の2(3)②") < keys.index("第3条")
    assert keys.index("第7条") < keys.index("第13条")


def test_categories_follow_the_policy():
    """The eight categories are in policy order with their clauses and file names."""
    assert [c.id for c in CATEGORIES] == [
        "basic_policy",
        "handling_rules",
        "organizational",
        "human",
        "physical",
        "technical",
        "external_environment",
        "related_duties",
    ]
    assert [c.order for c in CATEGORIES] == list(range(1, 9))
    assert CATEGORIES[0].policy_clause == "第2条の2(1)"
    assert CATEGORIES[6].policy_clause == "第2条の2(7)"
    assert CATEGORIES[7].policy_clause == "第3条・第4条・第7条"
    assert CATEGORIES[7].file_name == "08-related-duties.yaml"
    assert all(c.title_ja and c.title_en for c in CATEGORIES)


def test_a_single_file_loads():
    """A path to one category file loads only that file's controls."""
    catalog = load_catalog(CONTROLS / "03-organizational.yaml")
    assert catalog.ok
    assert catalog.files == ["03-organizational.yaml"]
    assert {c.category for c in catalog.controls} == {"organizational"}


def test_to_dict_matches_the_yaml(shipped):
    """to_dict gives back the fields as written in the file (plus empty attributes)."""
    raw = yaml.safe_load((CONTROLS / "06-technical.yaml").read_text(encoding="utf-8"))
    loaded = {c.id: c for c in shipped.controls}
    for item in raw["controls"]:
        assert loaded[item["id"]].to_dict() == item | {"attributes": {}}


# --- hashes and versions -------------------------------------------------------------------


def test_content_hash_is_stable_and_follows_the_text(shipped):
    """content_hash is the same on every load, ignores source_file, and changes with a text."""
    again = load_catalog(CONTROLS)
    first = shipped.controls[0]
    assert first.content_hash() == again.controls[0].content_hash()
    assert re.fullmatch(r"[0-9a-f]{64}", first.content_hash())
    moved = dataclasses.replace(first, source_file="local-moved.yaml")
    assert moved.content_hash() == first.content_hash()
    retitled = dataclasses.replace(first, title=Text(first.title.ja, first.title.en + "."))
    assert retitled.content_hash() != first.content_hash()
    flipped = dataclasses.replace(first, evidence_required=not first.evidence_required)
    assert flipped.content_hash() != first.content_hash()


def test_version_changes_when_a_control_changes(shipped, tmp_path):
    """A copy of the catalog has the same version until one control's text changes."""
    copy = tmp_path / "controls"
    shutil.copytree(CONTROLS, copy)
    assert load_catalog(copy).version == shipped.version

    path = copy / "04-human.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("frequency: annual", "frequency: semiannual", 1), "utf-8")
    changed = load_catalog(copy)
    assert changed.ok
    assert changed.version != shipped.version


# --- bad files ------------------------------------------------------------------------------


def test_duplicate_id_across_files_names_both_files(tmp_path):
    """The same id in two files is an error on the second naming the first; one is kept."""
    write(tmp_path, "local-a.yaml", catalog_file(control()))
    write(tmp_path, "local-b.yaml", catalog_file(control()))
    catalog = load_catalog(tmp_path)
    assert [str(e) for e in catalog.errors] == [
        "local-b.yaml:2: LOC-01: id: duplicate id; also defined in local-a.yaml:2"
    ]
    assert [c.source_file for c in catalog.controls] == ["local-a.yaml"]


def test_missing_ja_text(tmp_path):
    """A {ja, en} pair without ja is reported at its line."""
    path = write(
        tmp_path, "local-x.yaml", catalog_file(control('ja: "クラウド管理者の多要素認証", '))
    )
    assert errors_of(path) == ["local-x.yaml:4: LOC-01: title.ja: is missing"]


def test_empty_en_text(tmp_path):
    """An en text of blanks only is empty."""
    bad = control('en: "Administrators use MFA."', 'en: "   "')
    path = write(tmp_path, "local-x.yaml", catalog_file(bad))
    assert errors_of(path) == ["local-x.yaml:5: LOC-01: requirement.en: is empty"]


def test_unknown_frequency(tmp_path):
    """A frequency outside the list is reported with the known ones."""
    path = write(tmp_path, "local-x.yaml", catalog_file(control("quarterly", "weekly")))
    assert errors_of(path) == [
        "local-x.yaml:9: LOC-01: frequency: unknown frequency 'weekly'; "
        "known: monthly, quarterly, semiannual, annual, event"
    ]


def test_yaml_syntax_error_gives_the_line(tmp_path):
    """A YAML syntax error is one error at the line the parser stopped on."""
    path = write(tmp_path, "local-x.yaml", catalog_file(control("quarterly", "quarterly: x")))
    (error,) = load_catalog(path).errors
    assert (error.file, error.line, error.control_id) == ("local-x.yaml", 9, None)
    assert error.problem.startswith("YAML syntax error: ")
    assert "mapping values are not allowed here" in error.problem


def test_non_utf8_file(tmp_path):
    """A file saved as CP932 is reported at the line of its first non-UTF-8 byte."""
    path = write(tmp_path, "local-x.yaml", catalog_file(control()).encode("cp932"))
    assert errors_of(path) == ["local-x.yaml:4: not valid UTF-8"]


def test_unknown_category(tmp_path):
    """A category outside the eight is reported with the known ones."""
    path = write(tmp_path, "local-x.yaml", catalog_file(control("technical", "legal")))
    (message,) = errors_of(path)
    assert message.startswith("local-x.yaml:3: LOC-01: category: unknown category 'legal'; known: ")
    assert "basic_policy" in message and "related_duties" in message


def test_category_file_holds_only_its_category(tmp_path):
    """A technical control in the human category file is an error."""
    path = write(tmp_path, "04-human.yaml", catalog_file(control()))
    assert errors_of(path) == [
        "04-human.yaml:3: LOC-01: category: 'technical' does not belong in 04-human.yaml, "
        "which holds only 'human' controls (move it to 06-technical.yaml or a local-*.yaml file)"
    ]


def test_unknown_key(tmp_path):
    """A key the format does not know is an error naming the key."""
    bad = control("    frequency:", '    owner: "情報システム部"\n    frequency:')
    path = write(tmp_path, "local-x.yaml", catalog_file(bad))
    assert errors_of(path) == [
        "local-x.yaml:9: LOC-01: owner: unknown key 'owner'; "
        "put organization-specific fields under 'attributes'"
    ]


def test_missing_field(tmp_path):
    """A required field that is absent is reported at the control's line."""
    bad = control("    evidence_required: true\n")
    path = write(tmp_path, "local-x.yaml", catalog_file(bad))
    assert errors_of(path) == ["local-x.yaml:2: LOC-01: evidence_required: is missing"]


def test_bad_policy_reference(tmp_path):
    """A policy reference with full-width parentheses fails the pattern, with a hint."""
    path = write(tmp_path, "local-x.yaml", catalog_file(control("第2条の2(6)①", "第2条の2（6）①")))
    (error,) = load_catalog(path).errors
    assert (error.line, error.control_id, error.field) == (7, "LOC-01", "references.policy[0]")
    assert error.problem.startswith("'第2条の2（6）①' does not match ^第[0-9]+条")
    assert error.problem.endswith("use ASCII ( ) and digits 0-9")


@pytest.mark.parametrize("value", ['"yes"', "yes"])
def test_evidence_required_must_be_a_bool(tmp_path, value):
    """evidence_required "yes" (quoted or not) is not a boolean."""
    bad = control("evidence_required: true", f"evidence_required: {value}")
    path = write(tmp_path, "local-x.yaml", catalog_file(bad))
    assert errors_of(path) == [
        "local-x.yaml:16: LOC-01: evidence_required: must be true or false, not 'yes'"
    ]


def test_title_of_201_characters(tmp_path):
    """A title of 201 characters is too long; 200 is fine."""
    too_long = control('en: "MFA for cloud administrators"', f'en: "{"x" * 201}"')
    path = write(tmp_path, "local-x.yaml", catalog_file(too_long))
    assert errors_of(path) == [
        "local-x.yaml:4: LOC-01: title.en: is 201 characters long; at most 200"
    ]
    just_fits = control('en: "MFA for cloud administrators"', f'en: "{"x" * 200}"')
    path = write(tmp_path, "local-x.yaml", catalog_file(just_fits))
    assert errors_of(path) == []


def test_top_level_not_a_mapping(tmp_path):
    """A file that is a bare list of controls is rejected."""
    path = write(tmp_path, "local-x.yaml", CONTROL)
    assert errors_of(path) == [
        "local-x.yaml:1: top level must be a mapping with key 'controls', not a list"
    ]


def test_duplicate_yaml_key(tmp_path):
    """A key written twice in one mapping is reported instead of silently replaced."""
    bad = control("    frequency: quarterly\n", "    frequency: quarterly\n    frequency: annual\n")
    path = write(tmp_path, "local-x.yaml", catalog_file(bad))
    assert errors_of(path) == [
        "local-x.yaml:10: frequency: duplicate key; the later value would replace the earlier"
    ]


def test_all_errors_are_collected(tmp_path):
    """Every problem of every control and file is reported, not only the first."""
    first = control("quarterly", "weekly")
    second = control("LOC-01", "loc-2").replace('en: "Enforce MFA."}', 'en: ""}', 1)
    write(tmp_path, "local-a.yaml", catalog_file(first, second))
    write(tmp_path, "notes.yaml", catalog_file(control("LOC-01", "LOC-03")))
    catalog = load_catalog(tmp_path)
    assert [str(e) for e in catalog.errors] == [
        "local-a.yaml:9: LOC-01: frequency: unknown frequency 'weekly'; "
        "known: monthly, quarterly, semiannual, annual, event",
        "local-a.yaml:17: loc-2: id: 'loc-2' does not match ^[A-Z]{2,5}-[0-9]{2,3}$ "
        "(e.g. 'LOC-01')",
        "local-a.yaml:26: loc-2: methods.standard.en: is empty",
        "notes.yaml: file name must be NN-<category>.yaml (a category file) "
        "or local-<name>.yaml (the organization's own controls)",
    ]
    assert not catalog.ok
    assert [c.id for c in catalog.controls] == ["LOC-03"]


def test_catalog_error_omits_unknown_parts():
    """CatalogError prints file:line: id: field: problem, leaving out the parts that are None."""
    assert str(CatalogError("03-organizational.yaml", 12, "ORG-01", "title.ja", "is empty")) == (
        "03-organizational.yaml:12: ORG-01: title.ja: is empty"
    )
    assert (
        str(CatalogError("a.yaml", None, None, None, "not valid UTF-8"))
        == "a.yaml: not valid UTF-8"
    )
    assert str(CatalogError("a.yaml", 3, None, "controls", "is missing")) == (
        "a.yaml:3: controls: is missing"
    )


def test_local_file_with_an_extra_control_loads(tmp_path):
    """A local-*.yaml control joins the shipped catalog, after its category, with attributes."""
    folder = tmp_path / "controls"
    shutil.copytree(CONTROLS, folder)
    extra = control(
        "    evidence_required: true\n",
        "    evidence_required: true\n"
        "    attributes:\n"
        '      owner_department: "情報システム部"\n'
        "      ticket: 42\n"
        '      reviewed: "2025-04-01"\n',
    )
    write(folder, "local-cloud.yaml", "# own controls\n" + catalog_file(extra))
    catalog = load_catalog(folder)
    assert catalog.errors == []
    assert catalog.files[-1] == "local-cloud.yaml"
    ids = [c.id for c in catalog.controls]
    assert ids.index("LOC-01") == max(i for i, x in enumerate(ids) if x.startswith("TEC-")) + 1
    local = catalog.controls[ids.index("LOC-01")]
    assert local.source_file == "local-cloud.yaml"
    assert local.attributes == {
        "owner_department": "情報システム部",
        "ticket": 42,
        "reviewed": "2025-04-01",
    }
    assert local.references["act"] == ()
    assert local.to_dict()["attributes"] == local.attributes
    assert "LOC-01" in policy_items_covered(catalog)["第2条の2(6)①"]
