"""Agency registry (danh mục cơ quan): the bodies that receive dossiers, kept as data.

The packaged file `schemas/data/haiphong_agencies.json` holds Hải Phòng's 114
commune-level units (official ward codes from the `vietnam-provinces` 2025 data; built by
`scripts/build_registry.py`) and the city bodies that receive dossiers. Another province
is another file with the same shape:

    {"province_code": "31", "province_name": "Thành phố Hải Phòng",
     "agencies": [{"code": "SO-YTE", "name": "Sở Y tế", "name_en": "Department of Health",
                   "level": "city", "kind": "so"}, ...]}

Rules checked on load: commune-level kinds (xa, phuong, dac_khu) have level "commune" and
a 5-digit official code; the other kinds have level "city"; codes are unique.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.enums import AgencyLevel
from schemas.errors import DossierStreamError

__all__ = [
    "COMMUNE_KINDS",
    "DEFAULT_REGISTRY_PATH",
    "Agency",
    "AgencyKind",
    "AgencyRegistry",
    "RegistryError",
]

DEFAULT_REGISTRY_PATH = Path(__file__).resolve().parent / "data" / "haiphong_agencies.json"

# so: department-level specialised body (sở, also the Inspectorate and the Office of the
# People's Committee); cong_an: police; ban: management board; nganh: central-branch
# office in the city (tax, social insurance); xa / phuong / dac_khu: commune-level units.
AgencyKind = Literal["so", "cong_an", "ban", "nganh", "xa", "phuong", "dac_khu"]
COMMUNE_KINDS: frozenset[str] = frozenset({"xa", "phuong", "dac_khu"})


class RegistryError(DossierStreamError, ValueError):
    """An agency registry file or entry is malformed."""


class Agency(BaseModel):
    """One body that receives dossiers: a city department or a commune-level unit."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=32)
    name: str = Field(min_length=1)
    name_en: str | None = None
    level: AgencyLevel
    kind: AgencyKind

    @field_validator("name", "name_en")
    @classmethod
    def _nfc(cls, value: str | None) -> str | None:
        # Composed form, so that names typed on any keyboard compare equal.
        return None if value is None else unicodedata.normalize("NFC", value)

    @model_validator(mode="after")
    def _level_matches_kind(self) -> Agency:
        expected = AgencyLevel.COMMUNE if self.kind in COMMUNE_KINDS else AgencyLevel.CITY
        if self.level is not expected:
            raise ValueError(f"kind {self.kind!r} needs level {expected.value!r}")
        if expected is AgencyLevel.COMMUNE and not (len(self.code) == 5 and self.code.isdigit()):
            raise ValueError(
                f"a commune-level code is the 5-digit official code, got {self.code!r}"
            )
        return self


class AgencyRegistry:
    """The agencies of one province, looked up by code."""

    def __init__(
        self, agencies: Iterable[Agency], *, province_code: str, province_name: str
    ) -> None:
        self.province_code = province_code
        self.province_name = province_name
        self._by_code: dict[str, Agency] = {}
        for agency in agencies:
            if agency.code in self._by_code:
                raise RegistryError(f"duplicate agency code {agency.code!r}")
            self._by_code[agency.code] = agency

    @classmethod
    def from_file(cls, path: Path | str) -> AgencyRegistry:
        """Load a registry JSON file; errors name the file, the entry and the field."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RegistryError(f"{p}: not valid JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except RegistryError as exc:
            raise RegistryError(f"{p}: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Any) -> AgencyRegistry:
        """Build a registry from the parsed JSON document."""
        if not isinstance(data, dict):
            raise RegistryError(f"expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"province_code", "province_name", "agencies"})
        if unknown:
            raise RegistryError(f"unknown top-level key(s): {', '.join(map(repr, unknown))}")
        for key in ("province_code", "province_name"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise RegistryError(f"{key} is required and must be a non-empty string")
        entries = data.get("agencies")
        if not isinstance(entries, list):
            raise RegistryError("agencies is required and must be a list")
        agencies: list[Agency] = []
        first_seen: dict[str, int] = {}
        for i, entry in enumerate(entries):
            agency = _parse_entry(i, entry)
            if agency.code in first_seen:
                raise RegistryError(
                    f"agencies[{i}]: duplicate code {agency.code!r} "
                    f"(first at agencies[{first_seen[agency.code]}])"
                )
            first_seen[agency.code] = i
            agencies.append(agency)
        return cls(
            agencies,
            province_code=data["province_code"].strip(),
            province_name=unicodedata.normalize("NFC", data["province_name"].strip()),
        )

    @classmethod
    def default(cls) -> AgencyRegistry:
        """The packaged Hải Phòng registry (loaded once)."""
        return _default_registry()

    def get(self, code: str) -> Agency | None:
        """The agency with this code, or None."""
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self._by_code

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_code.values())

    def by_level(self, level: AgencyLevel) -> list[Agency]:
        """Agencies of one level, in registry order."""
        return [a for a in self._by_code.values() if a.level is AgencyLevel(level)]

    def __repr__(self) -> str:
        return (
            f"AgencyRegistry(province_code={self.province_code!r}, "
            f"province_name={self.province_name!r}, agencies={len(self)})"
        )


def _parse_entry(i: int, entry: object) -> Agency:
    if not isinstance(entry, dict):
        raise RegistryError(f"agencies[{i}]: expected an object, got {type(entry).__name__}")
    label = f"agencies[{i}]" + (f" (code {entry['code']!r})" if "code" in entry else "")
    try:
        return Agency.model_validate(entry)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"field {loc!r}: {msg}" if loc else msg)
        raise RegistryError(f"{label}: {'; '.join(problems)}") from exc


@cache
def _default_registry() -> AgencyRegistry:
    return AgencyRegistry.from_file(DEFAULT_REGISTRY_PATH)
