"""Agency registry: the packaged Hải Phòng file, and errors on malformed files."""

from __future__ import annotations

import importlib.util
import json
import unicodedata
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from vietnam_provinces import ProvinceCode, Ward

from schemas.enums import AgencyLevel
from schemas.registry import DEFAULT_REGISTRY_PATH, Agency, AgencyRegistry, RegistryError

ROOT = Path(__file__).resolve().parents[3]

CITY_BODIES = {
    "SO-NV": "Sở Nội vụ",
    "SO-TP": "Sở Tư pháp",
    "SO-TC": "Sở Tài chính",
    "SO-CT": "Sở Công Thương",
    "SO-NNMT": "Sở Nông nghiệp và Môi trường",
    "SO-XD": "Sở Xây dựng",
    "SO-KHCN": "Sở Khoa học và Công nghệ",
    "SO-VHTTDL": "Sở Văn hóa, Thể thao và Du lịch",
    "SO-GDDT": "Sở Giáo dục và Đào tạo",
    "SO-YTE": "Sở Y tế",
    "TTR": "Thanh tra thành phố",
    "VP-UBND": "Văn phòng Ủy ban nhân dân thành phố",
    "CA-TP": "Công an thành phố Hải Phòng",
    "BQL-KKT": "Ban Quản lý Khu kinh tế Hải Phòng",
    "THUE": "Thuế thành phố Hải Phòng",
    "BHXH": "Bảo hiểm xã hội thành phố Hải Phòng",
}


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.default()


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_registry_script", ROOT / "scripts" / "build_registry.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packaged_file_loads(registry: AgencyRegistry) -> None:
    assert registry.province_code == "31"
    assert registry.province_name == "Thành phố Hải Phòng"
    assert len(registry) == 114 + len(CITY_BODIES)
    assert AgencyRegistry.default() is registry  # cached


def test_commune_level_units_by_kind(registry: AgencyRegistry) -> None:
    communes = registry.by_level(AgencyLevel.COMMUNE)
    assert len(communes) == 114
    assert Counter(a.kind for a in communes) == {"xa": 67, "phuong": 45, "dac_khu": 2}
    special_zones = {a.name for a in communes if a.kind == "dac_khu"}
    assert special_zones == {"Đặc khu Cát Hải", "Đặc khu Bạch Long Vĩ"}
    assert all(len(a.code) == 5 and a.code.isdigit() for a in communes)


@pytest.mark.parametrize(("code", "name"), sorted(CITY_BODIES.items()))
def test_city_body_present(registry: AgencyRegistry, code: str, name: str) -> None:
    agency = registry.get(code)
    assert agency is not None
    assert agency.name == name
    assert agency.level is AgencyLevel.CITY
    assert agency.name_en


def test_city_level_is_exactly_the_city_bodies(registry: AgencyRegistry) -> None:
    assert {a.code for a in registry.by_level(AgencyLevel.CITY)} == set(CITY_BODIES)


def test_names_keep_diacritics(registry: AgencyRegistry) -> None:
    names = {a.name for a in registry}
    assert "Sở Khoa học và Công nghệ" in names
    assert "Phường Hồng Bàng" in names
    assert "Sở Khoa hoc va Cong nghe" not in names
    raw = DEFAULT_REGISTRY_PATH.read_text(encoding="utf-8")
    assert "Sở Y tế" in raw  # written with ensure_ascii=False, not \\u escapes


def test_lookup_api(registry: AgencyRegistry) -> None:
    assert "SO-YTE" in registry
    assert "11914" in registry  # Đặc khu Cát Hải
    assert "NOPE" not in registry
    assert 11914 not in registry
    assert registry.get("NOPE") is None
    assert sum(1 for _ in registry) == len(registry)


def test_commune_part_matches_vietnam_provinces(registry: AgencyRegistry) -> None:
    kinds = {"xã": "xa", "phường": "phuong", "đặc khu": "dac_khu"}
    expected = {
        f"{int(w.code):05d}": (w.name, kinds[w.division_type.value])
        for w in Ward.iter_by_province(ProvinceCode(31))
    }
    actual = {a.code: (a.name, a.kind) for a in registry.by_level(AgencyLevel.COMMUNE)}
    assert actual == expected


def test_packaged_file_is_what_the_build_script_writes() -> None:
    script = _build_script()
    assert DEFAULT_REGISTRY_PATH.read_text(encoding="utf-8") == script.render(script.build())


# -- malformed files ---------------------------------------------------------------

GOOD_ENTRY = {
    "code": "SO-YTE",
    "name": "Sở Y tế",
    "name_en": "Department of Health",
    "level": "city",
    "kind": "so",
}


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "agencies.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _doc(*entries: Any) -> dict[str, Any]:
    return {"province_code": "31", "province_name": "Thành phố Hải Phòng", "agencies": [*entries]}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        pytest.param(
            _doc(GOOD_ENTRY, {**GOOD_ENTRY, "name": "Sở Y tế (bản sao)"}),
            r"agencies\[1\]: duplicate code 'SO-YTE' \(first at agencies\[0\]\)",
            id="duplicate-code",
        ),
        pytest.param(
            _doc({**GOOD_ENTRY, "level": "district"}),
            r"agencies\[0\] \(code 'SO-YTE'\): field 'level'",
            id="unknown-level",
        ),
        pytest.param(
            _doc({k: v for k, v in GOOD_ENTRY.items() if k != "name"}),
            r"agencies\[0\] \(code 'SO-YTE'\): field 'name': Field required",
            id="missing-name",
        ),
        pytest.param(
            _doc(GOOD_ENTRY, {k: v for k, v in GOOD_ENTRY.items() if k != "code"}),
            r"agencies\[1\]: field 'code': Field required",
            id="missing-code",
        ),
        pytest.param(
            _doc({**GOOD_ENTRY, "kind": "huyen"}),
            r"agencies\[0\] \(code 'SO-YTE'\): field 'kind'",
            id="unknown-kind",
        ),
        pytest.param(
            _doc({**GOOD_ENTRY, "phone": "0225"}),
            r"field 'phone': Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            _doc({**GOOD_ENTRY, "level": "commune"}),
            r"agencies\[0\] \(code 'SO-YTE'\): kind 'so' needs level 'city'",
            id="level-does-not-match-kind",
        ),
        pytest.param(
            _doc({"code": "HB", "name": "Phường Hồng Bàng", "level": "commune", "kind": "phuong"}),
            r"agencies\[0\] \(code 'HB'\): a commune-level code is the 5-digit official code",
            id="commune-code-not-official",
        ),
        pytest.param(
            {"province_name": "Thành phố Hải Phòng", "agencies": []},
            "province_code is required",
            id="missing-province-code",
        ),
        pytest.param(_doc(GOOD_ENTRY) | {"agencies": {}}, "agencies .*must be a list", id="dict"),
        pytest.param(
            _doc(GOOD_ENTRY) | {"version": 2}, "unknown top-level key.*'version'", id="key"
        ),
        pytest.param(_doc("SO-YTE"), r"agencies\[0\]: expected an object", id="entry-not-object"),
    ],
)
def test_from_file_errors_name_the_entry(tmp_path: Path, doc: Any, match: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(RegistryError, match=match) as info:
        AgencyRegistry.from_file(path)
    assert "agencies.json" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_from_file_rejects_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "agencies.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(RegistryError, match="not valid JSON"):
        AgencyRegistry.from_file(path)


def test_constructor_rejects_duplicate_codes() -> None:
    agency = Agency.model_validate(GOOD_ENTRY)
    with pytest.raises(RegistryError, match="duplicate agency code 'SO-YTE'"):
        AgencyRegistry([agency, agency], province_code="31", province_name="Thành phố Hải Phòng")


def test_another_province_loads(tmp_path: Path) -> None:
    doc = {
        "province_code": "01",
        "province_name": "Thành phố Hà Nội",
        "agencies": [
            {"code": "00004", "name": "Phường Ba Đình", "level": "commune", "kind": "phuong"},
            {"code": "00640", "name": "Xã Thanh Trì", "level": "commune", "kind": "xa"},
            {
                "code": "SO-TP",
                "name": "Sở Tư pháp",
                "name_en": "Department of Justice",
                "level": "city",
                "kind": "so",
            },
        ],
    }
    reg = AgencyRegistry.from_file(_write(tmp_path, doc))
    assert (reg.province_code, reg.province_name, len(reg)) == ("01", "Thành phố Hà Nội", 3)
    assert [a.code for a in reg.by_level(AgencyLevel.COMMUNE)] == ["00004", "00640"]
    ba_dinh = reg.get("00004")
    assert ba_dinh is not None and ba_dinh.name_en is None
    assert [a.code for a in reg] == ["00004", "00640", "SO-TP"]


def test_agency_is_frozen_and_names_are_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Sở Y tế")
    assert decomposed != "Sở Y tế"
    agency = Agency.model_validate({**GOOD_ENTRY, "name": decomposed})
    assert agency.name == "Sở Y tế"
    with pytest.raises(ValueError):
        agency.name = "x"  # type: ignore[misc]
