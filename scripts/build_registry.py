"""Build the agency registry file from `vietnam-provinces` plus the hand-kept city bodies.

Example:
    .venv/bin/python scripts/build_registry.py              # rewrite the packaged file
    .venv/bin/python scripts/build_registry.py --check      # exit 1 if the file has drifted
    .venv/bin/python scripts/build_registry.py --province 31 -o /tmp/agencies.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from schemas.enums import AgencyLevel  # noqa: E402
from schemas.registry import DEFAULT_REGISTRY_PATH, Agency, AgencyRegistry  # noqa: E402

HAIPHONG_CODE = 31

# Kind of each 2025 commune-level division type (vietnam-provinces' VietNamDivisionType value).
DIVISION_KINDS = {"xã": "xa", "phường": "phuong", "đặc khu": "dac_khu"}

# City bodies of Hải Phòng that receive dossiers: the 12 common specialised bodies under
# Decree 45/2025/NĐ-CP, then the police, the economic zone authority, tax and social
# insurance. Codes are ours (short and stable); Hải Phòng's own codes are not verified.
HAIPHONG_CITY_BODIES: tuple[tuple[str, str, str, str], ...] = (
    # code, name, English name, kind
    ("SO-NV", "Sở Nội vụ", "Department of Home Affairs", "so"),
    ("SO-TP", "Sở Tư pháp", "Department of Justice", "so"),
    ("SO-TC", "Sở Tài chính", "Department of Finance", "so"),
    ("SO-CT", "Sở Công Thương", "Department of Industry and Trade", "so"),
    ("SO-NNMT", "Sở Nông nghiệp và Môi trường", "Department of Agriculture and Environment", "so"),
    ("SO-XD", "Sở Xây dựng", "Department of Construction", "so"),
    ("SO-KHCN", "Sở Khoa học và Công nghệ", "Department of Science and Technology", "so"),
    (
        "SO-VHTTDL",
        "Sở Văn hóa, Thể thao và Du lịch",
        "Department of Culture, Sports and Tourism",
        "so",
    ),
    ("SO-GDDT", "Sở Giáo dục và Đào tạo", "Department of Education and Training", "so"),
    ("SO-YTE", "Sở Y tế", "Department of Health", "so"),
    ("TTR", "Thanh tra thành phố", "City Inspectorate", "so"),
    (
        "VP-UBND",
        "Văn phòng Ủy ban nhân dân thành phố",
        "Office of the City People's Committee",
        "so",
    ),
    ("CA-TP", "Công an thành phố Hải Phòng", "Hai Phong City Police", "cong_an"),
    ("BQL-KKT", "Ban Quản lý Khu kinh tế Hải Phòng", "Hai Phong Economic Zone Authority", "ban"),
    ("THUE", "Thuế thành phố Hải Phòng", "Hai Phong City Tax Office", "nganh"),
    ("BHXH", "Bảo hiểm xã hội thành phố Hải Phòng", "Hai Phong City Social Insurance", "nganh"),
)


def commune_agencies(province_code: int = HAIPHONG_CODE) -> list[Agency]:
    """The province's commune-level units as vietnam-provinces lists them today."""
    from vietnam_provinces import ProvinceCode, Ward

    out = []
    for ward in Ward.iter_by_province(ProvinceCode(province_code)):
        kind = DIVISION_KINDS.get(ward.division_type.value)
        if kind is None:
            raise ValueError(f"{ward.name}: unexpected division type {ward.division_type.value!r}")
        out.append(
            Agency(
                code=f"{int(ward.code):05d}",
                name=ward.name,
                name_en=None,
                level=AgencyLevel.COMMUNE,
                kind=kind,
            )
        )
    return out


def city_agencies() -> list[Agency]:
    """The hand-kept city bodies."""
    return [
        Agency(code=code, name=name, name_en=name_en, level=AgencyLevel.CITY, kind=kind)
        for code, name, name_en, kind in HAIPHONG_CITY_BODIES
    ]


def province_name(province_code: int = HAIPHONG_CODE) -> str:
    from vietnam_provinces import Province, ProvinceCode

    return Province.from_code(ProvinceCode(province_code)).name


def build(province_code: int = HAIPHONG_CODE) -> dict[str, Any]:
    """The registry document: city bodies first, then communes, each sorted by code."""
    agencies = city_agencies() if province_code == HAIPHONG_CODE else []
    agencies += commune_agencies(province_code)
    agencies.sort(key=lambda a: (a.level.value, a.code))
    doc = {
        "province_code": str(province_code),
        "province_name": province_name(province_code),
        "agencies": [a.model_dump(mode="json") for a in agencies],
    }
    AgencyRegistry.from_dict(doc)  # the same checks as loading: duplicate codes, levels
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="example: python scripts/build_registry.py --check",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_REGISTRY_PATH)
    parser.add_argument(
        "--province",
        type=int,
        default=HAIPHONG_CODE,
        help="province code (city bodies are only known for 31, Hải Phòng)",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file differs"
    )
    args = parser.parse_args(argv)
    text = render(build(args.province))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run scripts/build_registry.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {len(json.loads(text)['agencies'])} agencies")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
