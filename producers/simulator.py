"""A realistic, deterministic Hải Phòng workload: dossier lifecycles as contract events.

Pure: no I/O and no clock reads. `WorkloadSimulator.events()` yields `SimEvent`s in
global `occurred_at` order (a heap merge of per-dossier lifecycles started day by day in
arrival order, so only dossiers still in flight are held in memory). The same
`SimulationConfig` (seed included) gives the same events, byte for byte.

Volumes and mixes (defaults; `SimulationConfig` and `Rates` change them):

- City bodies (sở, ban, ngành): about 140,000 dossiers received a quarter (91 days),
  scaled to the simulated days and to `scale`, split by `CITY_PROFILES`. Online shares
  make a city-wide online share of about 67%; the six units the seed article names
  (CA-TP, SO-KHCN, SO-YTE, SO-XD, SO-GDDT, SO-VHTTDL) are above 80%, the others below.
- Commune-level units (xã, phường, đặc khu): `commune_daily` received a working day on
  average (wards more, special zones less), online 40-55%.
- Online submissions come at any hour of any day; staff actions (receipt, processing,
  resolution) happen in the calendar's working hours of working days.
- About 1% of received city dossiers end overdue: resolved late, counted late by the
  766 rule (two supplement requests), or still open past the due instant at the end.

Deadlines come from the working-day calendar (`domain.calendar.WorkingCalendar`):
due = `due_at(accepted_at, limit)`, moved by `due_after_resume` after each supplement
pause. `appointment_at` is chosen so that the worker's reading of it gives back the same
due instant: the appointment date at the end of the working day for day limits (due =
00:00 of the next day) and the due instant itself for hour limits.
"""

from __future__ import annotations

import heapq
import random
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

from domain.calendar import WorkingCalendar
from schemas.enums import (
    AgencyLevel,
    Channel,
    EventType,
    OnlineMode,
    ProcedureField,
    Status,
    TimeUnit,
)
from schemas.events import ClockAction, DossierEvent, parse_event
from schemas.registry import Agency, AgencyRegistry

__all__ = [
    "CITY_PROFILES",
    "SEED_ONLINE_LEADERS",
    "AgencyProfile",
    "DossierPlan",
    "Incident",
    "Procedure",
    "Rates",
    "SimEvent",
    "SimulationConfig",
    "SimulationStats",
    "WorkloadSimulator",
]

# Vietnam keeps UTC+7 all year; a fixed offset is what the wire format shows anyway.
UTC7 = timezone(timedelta(hours=7))
_DAY = 86_400
_OFFSET = 7 * 3600
_FAR_FUTURE = 4_102_444_800  # 2100-01-01: "after the end of anything we simulate"
_CALENDAR_MARGIN_DAYS = 150  # calendar needed past the end: limits, pauses, lateness

# The units the seed article names as above 80% online.
SEED_ONLINE_LEADERS = ("CA-TP", "SO-KHCN", "SO-YTE", "SO-XD", "SO-GDDT", "SO-VHTTDL")
CITY_QUARTER_VOLUME = 140_000  # dossiers received by city bodies in a quarter (the article)
QUARTER_DAYS = 91

WD, CD, HOURS = TimeUnit.WORKING_DAYS, TimeUnit.CALENDAR_DAYS, TimeUnit.HOURS
F = ProcedureField

REFUSAL_REASONS = (
    "Thành phần hồ sơ không đầy đủ, không hợp lệ",
    "Hồ sơ không thuộc thẩm quyền giải quyết",
    "Thông tin kê khai không khớp với cơ sở dữ liệu",
)
WITHDRAWAL_REASONS = (
    "Công dân đề nghị rút hồ sơ",
    "Tổ chức đề nghị rút hồ sơ để bổ sung, hoàn thiện",
)
STOP_REASONS = (
    "Dừng xử lý theo đề nghị của cơ quan có thẩm quyền",
    "Hồ sơ thuộc trường hợp phải dừng giải quyết theo quy định",
)
STOP_UNANSWERED = "Quá thời hạn bổ sung hồ sơ mà công dân không bổ sung"


@dataclass(frozen=True, slots=True)
class Procedure:
    """One administrative procedure (thủ tục) an agency handles, with its time limit."""

    code: str
    field: ProcedureField
    name: str  # Vietnamese name, for people reading the data; not sent in events
    limit_value: int
    limit_unit: TimeUnit
    weight: float = 1.0
    fee_rate: float = 0.05  # share of dossiers asked to pay a fee or tax (status 6)
    supplement_rate: float = 0.06  # share asked for a supplement (status 5)


@dataclass(frozen=True, slots=True)
class AgencyProfile:
    """How one agency's dossiers look: volume, channel mix, lateness, procedure mix."""

    code: str
    level: AgencyLevel
    received_per_period: float  # expected dossiers received (accepted) over the period
    online_share: float  # online received / received
    full_share: float  # full-online (toàn trình) share of the online dossiers
    post_share: float  # post share of the offline dossiers
    late_rate: float  # share of resolved dossiers resolved after the due instant
    transfer_rate: float
    procedures: tuple[Procedure, ...]


@dataclass(frozen=True)
class Rates:
    """Lifecycle probabilities and timing shared by every agency."""

    refuse_online: float = 0.03  # submitted online, refused at intake
    refuse_counter: float = 0.005  # brought in person or by post, refused at the counter
    second_supplement: float = 0.03  # of dossiers with one supplement request
    withdraw: float = 0.008
    stop: float = 0.003
    apology: float = 0.7  # of the dossiers that will be late: an apology slip before due
    returned: float = 0.97  # of resolved dossiers: result returned (status 10)
    off_day_online: float = 0.25  # online submissions on a day off, relative to a working day
    daily_noise: float = 0.10  # sd of the day-to-day volume factor
    incident_late: float = 0.6  # late rate of an agency's dossiers due inside an incident
    late_mean_days: float = 1.5  # mean lateness in working days (exponential, plus 0.1)
    incident_late_mean_days: float = 3.0


# Weekday volume factors: more people come on Mondays.
WEEKDAY_FACTOR = (1.15, 1.05, 1.0, 1.0, 0.9, 0.8, 0.8)
# Online submissions by hour of day (relative weights).
ONLINE_HOURS = (
    0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 1.5, 2.5, 3.0, 3.0, 2.5,
    1.5, 2.0, 2.5, 2.5, 2.2, 1.8, 1.5, 1.5, 1.4, 1.2, 0.8, 0.4,
)  # fmt: skip


def _procedure_code(owner: str, name: str) -> str:
    # Stable codes in the national "1.00xxxx" style (made up: not the real codes).
    prefix = "2" if owner == "commune" else "1"
    return f"{prefix}.{zlib.crc32(f'{owner}/{name}'.encode()) % 12_000 + 100:06d}"


_ProcSpec = tuple[str, ProcedureField, int, TimeUnit, float, float, float]


def _procs(owner: str, specs: Iterable[_ProcSpec]) -> tuple[Procedure, ...]:
    return tuple(
        Procedure(_procedure_code(owner, name), fld, name, value, unit, weight, fee, supp)
        for name, fld, value, unit, weight, fee, supp in specs
    )


@dataclass(frozen=True, slots=True)
class _CitySpec:
    volume: float  # received per quarter at scale 1
    online: float
    full: float
    post: float
    late: float
    procedures: tuple[_ProcSpec, ...]


# (name, field, limit value, unit, weight, fee rate, supplement rate)
CITY_PROFILES: dict[str, _CitySpec] = {
    "CA-TP": _CitySpec(30_000, 0.85, 0.75, 0.02, 0.005, (
        ("Đăng ký thường trú", F.SECURITY, 7, WD, 30, 0.02, 0.05),
        ("Đăng ký tạm trú", F.SECURITY, 3, WD, 25, 0.02, 0.04),
        ("Cấp hộ chiếu phổ thông", F.SECURITY, 8, WD, 20, 0.05, 0.03),
        ("Cấp căn cước", F.SECURITY, 7, WD, 10, 0.02, 0.03),
        ("Xác nhận thông tin về cư trú", F.SECURITY, 4, HOURS, 10, 0.0, 0.0),
        ("Đăng ký xe", F.SECURITY, 2, WD, 5, 0.3, 0.03),
    )),
    "SO-XD": _CitySpec(22_000, 0.84, 0.70, 0.05, 0.011, (
        ("Cấp đổi giấy phép lái xe", F.TRANSPORT, 5, WD, 45, 0.05, 0.03),
        ("Cấp phù hiệu xe kinh doanh vận tải", F.TRANSPORT, 2, WD, 25, 0.05, 0.03),
        ("Cấp giấy phép xây dựng", F.CONSTRUCTION, 20, CD, 10, 0.3, 0.15),
        ("Thẩm định thiết kế xây dựng", F.CONSTRUCTION, 20, WD, 5, 0.3, 0.15),
        ("Cấp chứng chỉ hành nghề hoạt động xây dựng", F.CONSTRUCTION, 20, WD, 10, 0.2, 0.08),
        ("Cấp giấy phép lưu hành xe quá tải trọng", F.TRANSPORT, 8, HOURS, 5, 0.0, 0.0),
    )),
    "SO-TP": _CitySpec(18_000, 0.53, 0.50, 0.08, 0.012, (
        ("Cấp phiếu lý lịch tư pháp", F.JUSTICE, 10, WD, 60, 0.05, 0.03),
        ("Đăng ký hộ tịch có yếu tố nước ngoài", F.CIVIL_STATUS, 15, WD, 15, 0.1, 0.08),
        ("Đăng ký hoạt động văn phòng công chứng", F.JUSTICE, 10, WD, 5, 0.1, 0.1),
        ("Xác nhận có quốc tịch Việt Nam", F.CIVIL_STATUS, 20, WD, 10, 0.0, 0.06),
        ("Cấp lại thẻ đấu giá viên", F.JUSTICE, 5, WD, 10, 0.1, 0.05),
    )),
    "SO-NNMT": _CitySpec(16_000, 0.38, 0.30, 0.05, 0.024, (
        ("Đăng ký biến động quyền sử dụng đất", F.LAND, 10, WD, 35, 0.5, 0.15),
        ("Cấp giấy chứng nhận quyền sử dụng đất lần đầu", F.LAND, 20, WD, 25, 0.5, 0.15),
        ("Cung cấp dữ liệu đất đai", F.LAND, 3, WD, 15, 0.3, 0.02),
        ("Cấp giấy phép môi trường", F.ENVIRONMENT, 30, CD, 5, 0.1, 0.15),
        ("Chứng nhận cơ sở đủ điều kiện an toàn thực phẩm nông lâm thủy sản",
         F.ENVIRONMENT, 15, WD, 10, 0.1, 0.08),
        ("Cấp giấy phép khai thác nước mặt", F.ENVIRONMENT, 20, WD, 10, 0.2, 0.1),
    )),
    "SO-TC": _CitySpec(9_000, 0.68, 0.60, 0.05, 0.011, (
        ("Đăng ký thành lập doanh nghiệp", F.BUSINESS, 3, WD, 50, 0.2, 0.06),
        ("Đăng ký thay đổi nội dung đăng ký doanh nghiệp", F.BUSINESS, 3, WD, 30, 0.2, 0.05),
        ("Quyết định chủ trương đầu tư", F.FINANCE, 15, WD, 5, 0.0, 0.12),
        ("Cấp mã số đơn vị có quan hệ với ngân sách", F.FINANCE, 2, WD, 15, 0.0, 0.03),
    )),
    "BHXH": _CitySpec(8_000, 0.40, 0.60, 0.10, 0.008, (
        ("Cấp lại, đổi sổ bảo hiểm xã hội", F.SOCIAL, 10, WD, 30, 0.0, 0.05),
        ("Giải quyết hưởng lương hưu", F.SOCIAL, 20, CD, 15, 0.0, 0.06),
        ("Cấp lại thẻ bảo hiểm y tế", F.SOCIAL, 3, WD, 35, 0.0, 0.02),
        ("Giải quyết hưởng chế độ ốm đau", F.SOCIAL, 6, WD, 20, 0.0, 0.05),
    )),
    "SO-YTE": _CitySpec(7_000, 0.85, 0.60, 0.03, 0.012, (
        ("Cấp giấy phép hành nghề khám bệnh, chữa bệnh", F.HEALTH, 20, WD, 30, 0.2, 0.12),
        ("Cấp chứng chỉ hành nghề dược", F.HEALTH, 20, WD, 20, 0.2, 0.1),
        ("Cấp giấy chứng nhận đủ điều kiện kinh doanh dược", F.HEALTH, 20, WD, 15, 0.2, 0.12),
        ("Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", F.HEALTH, 15, WD, 20,
         0.2, 0.08),
        ("Xác nhận nội dung quảng cáo thực phẩm", F.HEALTH, 10, WD, 15, 0.1, 0.06),
    )),
    "SO-NV": _CitySpec(7_000, 0.50, 0.50, 0.08, 0.011, (
        ("Cấp giấy phép lao động cho người nước ngoài", F.LABOUR, 5, WD, 30, 0.1, 0.06),
        ("Giải quyết chế độ người có công", F.LABOUR, 12, WD, 35, 0.0, 0.08),
        ("Đăng ký nội quy lao động", F.LABOUR, 7, WD, 20, 0.0, 0.05),
        ("Cho phép thành lập hội", F.OTHER, 30, CD, 15, 0.0, 0.1),
    )),
    "THUE": _CitySpec(6_000, 0.45, 0.70, 0.10, 0.006, (
        ("Đăng ký thuế lần đầu", F.FINANCE, 3, WD, 40, 0.0, 0.03),
        ("Giải quyết hồ sơ hoàn thuế", F.FINANCE, 6, WD, 20, 0.0, 0.08),
        ("Miễn, giảm thuế", F.FINANCE, 10, WD, 15, 0.0, 0.06),
        ("Xác nhận việc thực hiện nghĩa vụ thuế", F.FINANCE, 3, WD, 25, 0.0, 0.02),
    )),
    "SO-GDDT": _CitySpec(5_000, 0.86, 0.65, 0.05, 0.006, (
        ("Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", F.EDUCATION, 8, HOURS, 40, 0.05, 0.0),
        ("Chỉnh sửa nội dung văn bằng, chứng chỉ", F.EDUCATION, 5, WD, 25, 0.05, 0.05),
        ("Công nhận văn bằng do cơ sở nước ngoài cấp", F.EDUCATION, 20, WD, 20, 0.1, 0.08),
        ("Cho phép thành lập trung tâm ngoại ngữ, tin học", F.EDUCATION, 20, WD, 15, 0.1,
         0.12),
    )),
    "SO-CT": _CitySpec(5_000, 0.65, 0.55, 0.05, 0.010, (
        ("Đăng ký thực hiện khuyến mại", F.BUSINESS, 5, WD, 40, 0.0, 0.04),
        ("Cấp giấy phép bán lẻ rượu", F.BUSINESS, 10, WD, 25, 0.2, 0.08),
        ("Cấp giấy chứng nhận cửa hàng đủ điều kiện bán lẻ xăng dầu", F.BUSINESS, 15, WD,
         15, 0.3, 0.1),
        ("Cấp giấy chứng nhận an toàn thực phẩm ngành công thương", F.HEALTH, 15, WD, 20,
         0.2, 0.08),
    )),
    "SO-VHTTDL": _CitySpec(2_500, 0.87, 0.60, 0.05, 0.008, (
        ("Cấp thẻ hướng dẫn viên du lịch", F.CULTURE, 10, WD, 35, 0.2, 0.05),
        ("Cấp giấy phép kinh doanh dịch vụ karaoke", F.CULTURE, 5, WD, 25, 0.3, 0.08),
        ("Công nhận hạng cơ sở lưu trú du lịch", F.CULTURE, 30, CD, 15, 0.2, 0.1),
        ("Chấp thuận tổ chức biểu diễn nghệ thuật", F.CULTURE, 5, WD, 25, 0.0, 0.05),
    )),
    "BQL-KKT": _CitySpec(2_000, 0.70, 0.55, 0.05, 0.011, (
        ("Cấp giấy chứng nhận đăng ký đầu tư", F.FINANCE, 15, WD, 30, 0.0, 0.12),
        ("Cấp giấy phép lao động trong khu kinh tế", F.LABOUR, 5, WD, 35, 0.1, 0.05),
        ("Cấp giấy phép xây dựng trong khu kinh tế", F.CONSTRUCTION, 20, CD, 20, 0.3, 0.15),
        ("Xác nhận ưu đãi đầu tư", F.FINANCE, 10, WD, 15, 0.0, 0.06),
    )),
    "SO-KHCN": _CitySpec(1_500, 0.88, 0.70, 0.05, 0.008, (
        ("Đăng ký hợp đồng chuyển giao công nghệ", F.SCIENCE, 15, WD, 25, 0.1, 0.08),
        ("Phê duyệt mẫu phương tiện đo", F.SCIENCE, 15, WD, 20, 0.2, 0.08),
        ("Cấp giấy phép tiến hành công việc bức xạ", F.SCIENCE, 20, WD, 20, 0.2, 0.12),
        ("Đăng ký hoạt động thử nghiệm, kiểm định", F.SCIENCE, 5, WD, 35, 0.1, 0.05),
    )),
    "VP-UBND": _CitySpec(600, 0.40, 0.40, 0.10, 0.014, (
        ("Cho phép tổ chức hội nghị, hội thảo quốc tế", F.OTHER, 15, WD, 60, 0.0, 0.08),
        ("Chấp thuận đón đoàn khách nước ngoài", F.OTHER, 10, WD, 40, 0.0, 0.05),
    )),
    "TTR": _CitySpec(400, 0.20, 0.30, 0.15, 0.018, (
        ("Giải quyết khiếu nại lần đầu", F.OTHER, 30, CD, 60, 0.0, 0.1),
        ("Giải quyết tố cáo", F.OTHER, 30, CD, 40, 0.0, 0.1),
    )),
}  # fmt: skip

_DEFAULT_CITY = _CitySpec(500, 0.60, 0.50, 0.05, 0.010, (
    ("Thủ tục hành chính cấp thành phố", F.OTHER, 10, WD, 1, 0.05, 0.06),
))  # fmt: skip

# Commune-level procedures (shared by every xã, phường, đặc khu).
COMMUNE_PROCEDURES: tuple[_ProcSpec, ...] = (
    ("Đăng ký khai sinh", F.CIVIL_STATUS, 8, HOURS, 18, 0.0, 0.0),
    ("Đăng ký kết hôn", F.CIVIL_STATUS, 3, WD, 8, 0.0, 0.03),
    ("Đăng ký khai tử", F.CIVIL_STATUS, 1, WD, 5, 0.0, 0.02),
    ("Cấp bản sao trích lục hộ tịch", F.CIVIL_STATUS, 4, HOURS, 8, 0.05, 0.0),
    ("Cấp giấy xác nhận tình trạng hôn nhân", F.CIVIL_STATUS, 3, WD, 6, 0.0, 0.04),
    ("Chứng thực bản sao từ bản chính", F.JUSTICE, 2, HOURS, 14, 0.05, 0.0),
    ("Chứng thực chữ ký", F.JUSTICE, 4, HOURS, 5, 0.05, 0.0),
    ("Đăng ký biến động đất đai", F.LAND, 10, WD, 6, 0.5, 0.15),
    ("Cấp giấy chứng nhận quyền sử dụng đất lần đầu", F.LAND, 20, WD, 3, 0.5, 0.18),
    ("Chuyển mục đích sử dụng đất", F.LAND, 15, WD, 2, 0.6, 0.15),
    ("Trợ cấp xã hội hàng tháng", F.SOCIAL, 15, WD, 5, 0.0, 0.08),
    ("Hỗ trợ chi phí mai táng", F.SOCIAL, 5, WD, 3, 0.0, 0.04),
    ("Xác nhận hộ nghèo, hộ cận nghèo", F.SOCIAL, 7, WD, 2, 0.0, 0.05),
    ("Cấp giấy phép xây dựng nhà ở riêng lẻ", F.CONSTRUCTION, 15, CD, 4, 0.2, 0.15),
    ("Đăng ký hộ kinh doanh", F.BUSINESS, 3, WD, 5, 0.1, 0.05),
    ("Giải quyết chế độ trợ cấp người có công", F.LABOUR, 12, WD, 2, 0.0, 0.06),
    ("Chuyển trường học sinh trung học cơ sở", F.EDUCATION, 3, WD, 2, 0.0, 0.02),
    ("Đăng ký tổ chức lễ hội", F.CULTURE, 10, CD, 1, 0.0, 0.05),
)
_COMMUNE_PROCS = _procs("commune", COMMUNE_PROCEDURES)
COMMUNE_LATE_RATE = 0.018  # staff shortages at commune level (the article's weak point)
COMMUNE_TRANSFER_RATE = 0.01
# (volume factor, online share range, post share) by kind of commune-level unit
_COMMUNE_KIND = {
    "phuong": (1.3, (0.47, 0.55), 0.02),
    "xa": (0.85, (0.40, 0.50), 0.02),
    "dac_khu": (0.4, (0.40, 0.45), 0.04),
}


@dataclass(frozen=True)
class Incident:
    """An overdue spike: the agency's dossiers due inside the window are mostly late.

    Dossiers whose due instant falls in [start, start + hours) are resolved late (or
    left open past due) at `Rates.incident_late` instead of the agency's usual rate.
    Day limits fall due at 00:00, so give a window that spans a midnight.
    """

    agency_code: str
    start: datetime
    hours: float

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("incident start must be timezone-aware")
        if self.hours <= 0:
            raise ValueError("incident hours must be positive")

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)

    @classmethod
    def parse(cls, text: str) -> Incident:
        """Parse AGENCY:START:HOURS, e.g. SO-XD:2025-11-03T08:00:00+07:00:48.

        START is an ISO date or datetime; without an offset it is Vietnam time.
        """
        code, sep, rest = text.partition(":")
        start_text, sep2, hours_text = rest.rpartition(":")
        if not (sep and sep2 and code and start_text):
            raise ValueError(f"expected AGENCY:START:HOURS, got {text!r}")
        try:
            hours = float(hours_text)
        except ValueError:
            raise ValueError(f"HOURS must be a number, got {hours_text!r} in {text!r}") from None
        try:
            start = datetime.fromisoformat(start_text)
        except ValueError:
            raise ValueError(f"START must be an ISO date or datetime, got {start_text!r}") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC7)
        return cls(code.strip(), start, hours)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate: the period, the seed, the volume and the faults to inject."""

    start: date  # first simulated day; the period starts at its 00:00 in Vietnam
    days: int = QUARTER_DAYS
    seed: int = 0
    scale: float = 1.0  # fraction of the default volume
    communes: bool = True
    commune_daily: float = 25.0  # received per working day by an average commune-level unit
    city_quarter_volume: float = CITY_QUARTER_VOLUME
    incidents: tuple[Incident, ...] = ()
    duplicates: float = 0.0  # share of events sent a second time (same event_id)
    reorder: float = 0.0  # share of events swapped with the dossier's next event
    rates: Rates = field(default_factory=Rates)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.scale < 0 or self.commune_daily < 0:
            raise ValueError("scale and commune_daily must not be negative")
        for name in ("duplicates", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC7)

    @property
    def end_at(self) -> datetime:
        """The end instant (exclusive): 00:00 of the day after the last simulated day."""
        return self.start_at + timedelta(days=self.days)


class SimEvent(NamedTuple):
    """One generated event: the contract's fields with their Python types."""

    event_id: UUID
    dossier_id: str
    sequence: int
    event_type: EventType
    status: Status
    occurred_at: datetime
    emitted_at: datetime
    agency: dict[str, str]  # {"code", "level"}: shared, do not modify
    procedure: dict[str, str]  # {"code", "field"}: shared, do not modify
    channel: Channel
    online_mode: OnlineMode | None = None
    time_limit: dict[str, Any] | None = None
    appointment_at: datetime | None = None
    clock: ClockAction | None = None
    reason: str | None = None
    apology_appointment_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """The event as a contract document (absent optional fields left out).

        Values keep their Python types (UUID, datetime, enums): `orjson.dumps` writes
        them as the contract's JSON, and `parse_event` accepts the dict as it is.
        """
        doc: dict[str, Any] = {
            "schema_version": 1,
            "event_id": self.event_id,
            "dossier_id": self.dossier_id,
            "sequence": self.sequence,
            "event_type": self.event_type,
            "status": self.status,
            "occurred_at": self.occurred_at,
            "emitted_at": self.emitted_at,
            "agency": self.agency,
            "procedure": self.procedure,
            "channel": self.channel,
        }
        if self.online_mode is not None:
            doc["online_mode"] = self.online_mode
        if self.time_limit is not None:
            doc["time_limit"] = self.time_limit
        if self.appointment_at is not None:
            doc["appointment_at"] = self.appointment_at
        if self.clock is not None:
            doc["clock"] = self.clock
        if self.reason is not None:
            doc["reason"] = self.reason
        if self.apology_appointment_at is not None:
            doc["apology_appointment_at"] = self.apology_appointment_at
        return doc

    def to_event(self, registry: AgencyRegistry | None = None) -> DossierEvent:
        """The validated contract model (raises `EventValidationError` if invalid)."""
        return parse_event(self.as_dict(), registry)


@dataclass(slots=True)
class DossierPlan:
    """One dossier's whole planned lifecycle; times are epoch seconds.

    `events` holds only the events before the end instant, in sequence order. A time
    after the end means "not within the simulated period". `deadlines` lists the due
    instant in effect from each moment on: (from, due), the first from receipt.
    """

    ordinal: int  # arrival order over the whole run: the tie-break of equal instants
    dossier_id: str
    agency_code: str
    level: AgencyLevel
    procedure: Procedure
    channel: Channel
    online_mode: OnlineMode | None
    arrived_at: int
    accepted_at: int | None = None
    refused_at: int | None = None
    resolved_at: int | None = None
    returned_at: int | None = None
    withdrawn_at: int | None = None
    stopped_at: int | None = None
    deadlines: list[tuple[int, int]] = field(default_factory=list)
    pauses: list[tuple[int, int | None]] = field(default_factory=list)
    intended_late: bool = False
    incident: bool = False
    events: list[SimEvent] = field(default_factory=list)
    times: list[int] = field(default_factory=list)

    @property
    def supplements(self) -> int:
        return len(self.pauses)


@dataclass
class SimulationStats:
    """What a run of `events()` produced so far."""

    dossiers: int = 0
    events: int = 0  # distinct lifecycle events emitted
    duplicates: int = 0  # extra copies emitted
    swaps: int = 0  # pairs of a dossier's events emitted out of order

    @property
    def emitted(self) -> int:
        return self.events + self.duplicates


class _WorkAxis:
    """Working time as a counter of working seconds.

    W(t) counts the working seconds before t; its inverse maps a counter value back to
    an instant in working hours. "A staff moment x working days after t" is then one
    addition and one bisection.
    """

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        rules = calendar.rules
        self.day_start = _seconds(rules.workday_start)
        self.day_len = _seconds(rules.workday_end) - self.day_start
        self.origin = _midnight_ts(first)
        self.n = (last - first).days + 1
        self.cum: list[int] = [0] * (self.n + 1)
        self.working: list[bool] = [False] * self.n
        self.wd_start: list[int] = []  # epoch of each working day's start
        self.wd_cum: list[int] = []  # counter value at that start
        total = 0
        for i in range(self.n):
            d = first + timedelta(days=i)
            self.cum[i] = total
            if calendar.is_working_day(d):
                self.working[i] = True
                self.wd_start.append(self.origin + i * _DAY + self.day_start)
                self.wd_cum.append(total)
                total += self.day_len
        self.cum[self.n] = total
        self.total = total

    def w(self, ts: int) -> int:
        i = (ts - self.origin) // _DAY
        if i < 0:
            return 0
        if i >= self.n:
            return self.total
        base = self.cum[i]
        if not self.working[i]:
            return base
        off = ts - self.origin - i * _DAY - self.day_start
        if off <= 0:
            return base
        return base + (off if off < self.day_len else self.day_len)

    def at(self, w: int) -> int:
        if w >= self.total:
            return _FAR_FUTURE
        k = bisect_right(self.wd_cum, w) - 1
        return self.wd_start[k] + (w - self.wd_cum[k])


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _midnight_ts(d: date) -> int:
    return d.toordinal() * _DAY - _EPOCH_ORDINAL_SECONDS - _OFFSET


_EPOCH_ORDINAL_SECONDS = date(1970, 1, 1).toordinal() * _DAY


def _local_day(ts: int) -> int:
    """Days since 1970-01-01 of the Vietnam-local date of ts."""
    return (ts + _OFFSET) // _DAY


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC7)


def _stochastic_round(rng: random.Random, x: float) -> int:
    n = int(x)
    return n + (1 if rng.random() < x - n else 0)


class _Arrival(NamedTuple):
    ts: int
    agency_index: int
    local_index: int
    channel: Channel
    mode: OnlineMode | None


@dataclass(slots=True)
class _AgencyRun:
    """Per-agency state of one run."""

    index: int
    profile: AgencyProfile
    agency_ref: dict[str, str]
    proc_refs: tuple[dict[str, str], ...]
    proc_cum: tuple[float, ...]
    online_per_weight: float  # online arrivals per unit of day weight
    offline_per_weight: float
    incidents: tuple[tuple[int, int], ...]


class WorkloadSimulator:
    """Generates the workload of `config` for the agencies of `registry`.

    `plans()` yields each dossier's planned lifecycle in arrival order (what the truth
    is computed from); `events()` yields the events of those lifecycles in global
    `occurred_at` order, with the faults of `config` injected. Both are deterministic.
    """

    def __init__(
        self,
        config: SimulationConfig,
        *,
        registry: AgencyRegistry,
        calendar: WorkingCalendar,
    ) -> None:
        self.config = config
        self.registry = registry
        self.calendar = calendar
        self.rates = config.rates
        self.stats = SimulationStats()
        self.start_ts = _midnight_ts(config.start)
        self.end_ts = self.start_ts + config.days * _DAY
        first_day = date(calendar.years[0], 1, 1)
        last_day = date(calendar.years[-1], 12, 31)
        # Due instants of dossiers received near the end lie months after it.
        needed = config.start + timedelta(days=config.days + _CALENDAR_MARGIN_DAYS)
        if config.start - timedelta(days=1) < first_day or needed > last_day:
            raise ValueError(
                f"the working-day calendar covers {first_day.year}-{last_day.year}; "
                f"a period from {config.start} for {config.days} days needs it until {needed}"
            )
        horizon = min(config.start + timedelta(days=config.days + 400), last_day)
        self._axis = _WorkAxis(calendar, config.start - timedelta(days=1), horizon)
        self._day_len = self._axis.day_len
        self._we = _seconds(calendar.rules.workday_end)
        self._restart = calendar.rules.supplement_policy == "restart"
        self.profiles = self._build_profiles()
        known = {p.code for p in self.profiles}
        for inc in config.incidents:
            if inc.agency_code not in known:
                raise ValueError(
                    f"incident agency {inc.agency_code!r} is not simulated "
                    "(unknown code, or a commune with --no-communes)"
                )
        self._runs = [self._agency_run(i, p) for i, p in enumerate(self.profiles)]
        hours_cum: list[float] = []
        acc = 0.0
        for wgt in ONLINE_HOURS:
            acc += wgt
            hours_cum.append(acc)
        self._hours_cum = hours_cum

    # -- profiles ------------------------------------------------------------------------

    def _build_profiles(self) -> list[AgencyProfile]:
        cfg = self.config
        profiles: list[AgencyProfile] = []
        period_share = cfg.days / QUARTER_DAYS
        volume_factor = cfg.city_quarter_volume / CITY_QUARTER_VOLUME
        for agency in sorted(self.registry.by_level(AgencyLevel.CITY), key=lambda a: a.code):
            spec = CITY_PROFILES.get(agency.code, _DEFAULT_CITY)
            profiles.append(
                AgencyProfile(
                    code=agency.code,
                    level=AgencyLevel.CITY,
                    received_per_period=spec.volume * volume_factor * period_share * cfg.scale,
                    online_share=spec.online,
                    full_share=spec.full,
                    post_share=spec.post,
                    late_rate=spec.late,
                    transfer_rate=0.03,
                    procedures=_procs(agency.code, spec.procedures),
                )
            )
        if cfg.communes:
            communes = sorted(self.registry.by_level(AgencyLevel.COMMUNE), key=lambda a: a.code)
            working_days = sum(
                1
                for i in range(cfg.days)
                if self.calendar.is_working_day(cfg.start + timedelta(days=i))
            )
            shapes = [self._commune_shape(a) for a in communes]
            mean_volume = sum(s[0] for s in shapes) / len(shapes) if shapes else 1.0
            for agency, (volume, online, post) in zip(communes, shapes, strict=True):
                profiles.append(
                    AgencyProfile(
                        code=agency.code,
                        level=AgencyLevel.COMMUNE,
                        received_per_period=cfg.commune_daily
                        * volume
                        / mean_volume
                        * working_days
                        * cfg.scale,
                        online_share=online,
                        full_share=0.55,
                        post_share=post,
                        late_rate=COMMUNE_LATE_RATE,
                        transfer_rate=COMMUNE_TRANSFER_RATE,
                        procedures=_COMMUNE_PROCS,
                    )
                )
        return profiles

    @staticmethod
    def _commune_shape(agency: Agency) -> tuple[float, float, float]:
        # Each unit's size and online share are data, not chance: the same for every seed.
        rng = random.Random(f"commune-shape:{agency.code}")
        factor, (lo, hi), post = _COMMUNE_KIND.get(agency.kind, _COMMUNE_KIND["xa"])
        if agency.name.endswith("Bạch Long Vĩ"):  # an island of about a thousand people
            factor = 0.05
        return factor * rng.uniform(0.6, 1.4), rng.uniform(lo, hi), post

    def _agency_run(self, index: int, p: AgencyProfile) -> _AgencyRun:
        r = self.rates
        on_weight = off_weight = 0.0
        for i in range(self.config.days):
            d = self.config.start + timedelta(days=i)
            wf = WEEKDAY_FACTOR[d.weekday()]
            if self.calendar.is_working_day(d):
                on_weight += wf
                off_weight += wf
            else:
                on_weight += wf * r.off_day_online
        online = p.received_per_period * p.online_share / (1 - r.refuse_online)
        offline = p.received_per_period * (1 - p.online_share) / (1 - r.refuse_counter)
        cum: list[float] = []
        acc = 0.0
        for proc in p.procedures:
            acc += proc.weight
            cum.append(acc)
        incidents = tuple(
            (int(inc.start.timestamp()), int(inc.end.timestamp()))
            for inc in self.config.incidents
            if inc.agency_code == p.code
        )
        return _AgencyRun(
            index=index,
            profile=p,
            agency_ref={"code": p.code, "level": p.level.value},
            proc_refs=tuple({"code": pr.code, "field": pr.field.value} for pr in p.procedures),
            proc_cum=tuple(cum),
            online_per_weight=online / on_weight if on_weight else 0.0,
            offline_per_weight=offline / off_weight if off_weight else 0.0,
            incidents=incidents,
        )

    # -- public iteration ----------------------------------------------------------------

    def plans(self) -> Iterator[DossierPlan]:
        """Every dossier's planned lifecycle, in arrival order."""
        for _day_ts, batch in self._daily_batches():
            yield from batch

    def events(self, on_plan: Callable[[DossierPlan], None] | None = None) -> Iterator[SimEvent]:
        """Every event before the end instant, in occurred_at order, faults injected.

        `on_plan` is called with each dossier's plan when it is made (arrival order),
        before any of its events is yielded: feed it to a `TruthBuilder`.
        """
        self.stats = SimulationStats()
        yield from self._with_faults(self._ordered(on_plan))

    # -- generation ----------------------------------------------------------------------

    def _ordered(
        self, on_plan: Callable[[DossierPlan], None] | None
    ) -> Iterator[tuple[DossierPlan, int]]:
        heap: list[tuple[int, int, int, DossierPlan]] = []
        push, pop = heapq.heappush, heapq.heappop
        stats = self.stats
        for day_ts, batch in self._daily_batches():
            while heap and heap[0][0] < day_ts:
                _, ordinal, idx, plan = pop(heap)
                nxt = idx + 1
                if nxt < len(plan.times):
                    push(heap, (plan.times[nxt], ordinal, nxt, plan))
                yield plan, idx
            for plan in batch:
                stats.dossiers += 1
                if on_plan is not None:
                    on_plan(plan)
                if plan.times:
                    push(heap, (plan.times[0], plan.ordinal, 0, plan))
        while heap:
            _, ordinal, idx, plan = pop(heap)
            nxt = idx + 1
            if nxt < len(plan.times):
                push(heap, (plan.times[nxt], ordinal, nxt, plan))
            yield plan, idx

    def _with_faults(self, ordered: Iterator[tuple[DossierPlan, int]]) -> Iterator[SimEvent]:
        cfg = self.config
        stats = self.stats
        if cfg.duplicates <= 0 and cfg.reorder <= 0:
            for plan, idx in ordered:
                stats.events += 1
                yield plan.events[idx]
            return
        # Faults draw from their own stream, so the lifecycles do not depend on them.
        rng = random.Random(f"{cfg.seed}:faults")
        held: dict[str, SimEvent] = {}  # dossier id -> event waiting for its successor
        pending: list[tuple[int, int, SimEvent]] = []  # (release after n emitted, tie, event)
        emitted = 0

        def out(ev: SimEvent) -> Iterator[SimEvent]:
            nonlocal emitted
            while pending and pending[0][0] <= emitted:
                dup = heapq.heappop(pending)[2]
                emitted += 1
                stats.duplicates += 1
                yield dup
            emitted += 1
            stats.events += 1
            yield ev
            if cfg.duplicates > 0 and rng.random() < cfg.duplicates:
                heapq.heappush(pending, (emitted + int(rng.random() * 50), emitted, ev))

        for plan, idx in ordered:
            ev = plan.events[idx]
            waiting = held.pop(plan.dossier_id, None)
            if waiting is not None:
                yield from out(ev)
                yield from out(waiting)
                stats.swaps += 1
                continue
            if cfg.reorder > 0 and idx + 1 < len(plan.events) and rng.random() < cfg.reorder:
                held[plan.dossier_id] = ev
                continue
            yield from out(ev)
        while pending:
            stats.duplicates += 1
            yield heapq.heappop(pending)[2]

    def _daily_batches(self) -> Iterator[tuple[int, list[DossierPlan]]]:
        """For each simulated day: its start instant and the plans of its arrivals."""
        cfg = self.config
        ordinal = 0
        counters: list[dict[str, int]] = [{} for _ in self._runs]  # yymm -> dossiers numbered
        for day in range(cfg.days):
            d = cfg.start + timedelta(days=day)
            day_ts = self.start_ts + day * _DAY
            working = self.calendar.is_working_day(d)
            rngs: list[random.Random] = []
            arrivals: list[_Arrival] = []
            for run in self._runs:
                rng = random.Random(f"{cfg.seed}:{run.profile.code}:{d.isoformat()}")
                rngs.append(rng)
                arrivals.extend(self._arrivals(rng, run, d, day_ts, working))
            arrivals.sort()
            yymm = f"{d.year % 100:02d}{d.month:02d}"
            batch: list[DossierPlan] = []
            for arrival in arrivals:
                run = self._runs[arrival.agency_index]
                numbered = counters[arrival.agency_index]
                n = numbered[yymm] = numbered.get(yymm, 0) + 1
                dossier_id = f"HP-{run.profile.code}-{yymm}-{n:06d}"
                batch.append(
                    self._plan(rngs[arrival.agency_index], run, arrival, ordinal, dossier_id)
                )
                ordinal += 1
            yield day_ts, batch

    def _arrivals(
        self, rng: random.Random, run: _AgencyRun, d: date, day_ts: int, working: bool
    ) -> list[_Arrival]:
        p = run.profile
        wf = WEEKDAY_FACTOR[d.weekday()] * max(0.5, rng.gauss(1.0, self.rates.daily_noise))
        n_on = _stochastic_round(
            rng, run.online_per_weight * wf * (1.0 if working else self.rates.off_day_online)
        )
        n_off = _stochastic_round(rng, run.offline_per_weight * wf) if working else 0
        out: list[_Arrival] = []
        hours_cum = self._hours_cum
        total_w = hours_cum[-1]
        for _ in range(n_on):
            hour = bisect_right(hours_cum, rng.random() * total_w)
            ts = day_ts + min(hour, 23) * 3600 + int(rng.random() * 3600)
            mode = OnlineMode.FULL if rng.random() < p.full_share else OnlineMode.PARTIAL
            out.append(_Arrival(ts, run.index, 0, Channel.ONLINE, mode))
        start = day_ts + self._axis.day_start
        for _ in range(n_off):
            ts = start + int(rng.random() * self._day_len)
            channel = Channel.POST if rng.random() < p.post_share else Channel.IN_PERSON
            out.append(_Arrival(ts, run.index, 0, channel, None))
        out.sort(key=lambda a: a.ts)
        return [a._replace(local_index=i) for i, a in enumerate(out)]

    # -- one dossier's lifecycle -----------------------------------------------------------

    def _staff_after(self, rng: random.Random, t: int, lo_days: float, hi_days: float) -> int:
        """A working-hours instant between lo and hi working days after t."""
        ax = self._axis
        w = ax.w(t) + max(60, int(self._day_len * rng.uniform(lo_days, hi_days)))
        out = ax.at(w)
        return out if out > t else t + 1

    def _advance(self, rng: random.Random, t: int, due: int, lo: float, hi: float) -> int:
        """A working-hours instant after t, a fraction lo..hi of the working time to due."""
        ax = self._axis
        w0 = ax.w(t)
        span = ax.w(due) - w0
        if span <= 2:
            return t + 1
        w = w0 + max(1, int(span * rng.uniform(lo, hi)))
        if w >= w0 + span:
            w = w0 + span - 1
        out = ax.at(w)
        return out if out > t else t + 1

    def _due(self, accepted: int, proc: Procedure) -> int:
        due = self.calendar.due_at(_dt(accepted), proc.limit_value, proc.limit_unit)
        return int(due.timestamp())

    def _appointment(self, due: int, unit: TimeUnit) -> int:
        # The worker reads hour limits' appointment as the due instant itself and day
        # limits' appointment by its date (due = 00:00 after it): 17:00 that date.
        if unit is TimeUnit.HOURS:
            return due
        day = _local_day(due - 1)
        return min(due - 1, day * _DAY - _OFFSET + self._we)

    def _late_rate(self, run: _AgencyRun, due: int) -> tuple[float, bool]:
        for lo, hi in run.incidents:
            if lo <= due < hi:
                return self.rates.incident_late, True
        return run.profile.late_rate, False

    def _plan(
        self,
        rng: random.Random,
        run: _AgencyRun,
        arrival: _Arrival,
        ordinal: int,
        dossier_id: str,
    ) -> DossierPlan:
        r = self.rates
        p = run.profile
        k = bisect_right(run.proc_cum, rng.random() * run.proc_cum[-1])
        k = min(k, len(p.procedures) - 1)
        proc = p.procedures[k]
        plan = DossierPlan(
            ordinal=ordinal,
            dossier_id=dossier_id,
            agency_code=p.code,
            level=p.level,
            procedure=proc,
            channel=arrival.channel,
            online_mode=arrival.mode,
            arrived_at=arrival.ts,
        )
        builder = _EventBuilder(self, rng, run, plan, run.proc_refs[k])
        t0 = arrival.ts
        online = arrival.channel is Channel.ONLINE
        if online:
            builder.add(t0, EventType.SUBMITTED, Status.SUBMITTED)
            if rng.random() < r.refuse_online:
                t = self._staff_after(rng, t0, 0.05, 1.0)
                plan.refused_at = t
                reason = rng.choice(REFUSAL_REASONS)
                builder.add(t, EventType.REFUSED, Status.REFUSED, reason=reason)
                return builder.done()
            accepted = self._staff_after(rng, t0, 0.02, 0.6)
        else:
            if rng.random() < r.refuse_counter:
                plan.refused_at = t0
                reason = rng.choice(REFUSAL_REASONS)
                builder.add(t0, EventType.REFUSED, Status.REFUSED, reason=reason)
                return builder.done()
            accepted = t0
        unit = proc.limit_unit
        due = self._due(accepted, proc)
        plan.accepted_at = accepted
        plan.deadlines.append((accepted, due))
        builder.add(
            accepted,
            EventType.ACCEPTED,
            Status.ACCEPTED,
            time_limit={"value": proc.limit_value, "unit": unit},
            appointment_at=_dt(self._appointment(due, unit)),
        )
        t = self._advance(rng, accepted, due, 0.0, 0.05)
        builder.add(t, EventType.PROCESSING, Status.IN_PROCESS)

        hours = unit is TimeUnit.HOURS
        transfer = rng.random() < p.transfer_rate
        n_supp = 0 if hours or rng.random() >= proc.supplement_rate else 1
        if n_supp and rng.random() < r.second_supplement:
            n_supp = 2
        fee = not hours and rng.random() < proc.fee_rate
        x = rng.random()
        ending = "withdrawn" if x < r.withdraw else "stopped" if x < r.withdraw + r.stop else ""

        if transfer:
            t = self._advance(rng, t, due, 0.02, 0.2)
            builder.add(t, EventType.TRANSFERRED, Status.IN_PROCESS)
        for i in range(n_supp):
            paused = self._advance(rng, t, due, 0.05, 0.4)
            builder.add(
                paused,
                EventType.SUPPLEMENT_REQUESTED,
                Status.SUPPLEMENT_REQUESTED,
                clock=ClockAction.PAUSE,
            )
            if ending == "stopped" and i == n_supp - 1 and rng.random() < 0.5:
                # The applicant never brought the papers: processing stops.
                plan.pauses.append((paused, None))
                t = self._staff_after(rng, paused, 10, 20)
                plan.stopped_at = t
                builder.add(t, EventType.STOPPED, Status.STOPPED, reason=STOP_UNANSWERED)
                return builder.done()
            resumed = self._staff_after(rng, paused, 0.3, 8)
            if paused < due:  # a dossier overdue at its pause stays overdue: nothing moves
                due = int(
                    self.calendar.due_after_resume(
                        _dt(due), _dt(paused), _dt(resumed), value=proc.limit_value, unit=unit
                    ).timestamp()
                )
                plan.deadlines.append((resumed, due))
            plan.pauses.append((paused, resumed))
            clock = ClockAction.RESTART if self._restart else ClockAction.RESUME
            builder.add(resumed, EventType.SUPPLEMENT_RECEIVED, Status.IN_PROCESS, clock=clock)
            t = resumed
        if fee:
            t = self._advance(rng, t, due, 0.05, 0.4)
            builder.add(t, EventType.FEE_REQUESTED, Status.FEE_REQUESTED)
            t = self._advance(rng, t, due, 0.05, 0.5)
            builder.add(t, EventType.FEE_PAID, Status.IN_PROCESS)
        if ending:
            t = self._advance(rng, t, due, 0.1, 0.8)
            if ending == "withdrawn":
                plan.withdrawn_at = t
                reason = rng.choice(WITHDRAWAL_REASONS)
                builder.add(t, EventType.WITHDRAWN, Status.WITHDRAWN, reason=reason)
            else:
                plan.stopped_at = t
                builder.add(t, EventType.STOPPED, Status.STOPPED, reason=rng.choice(STOP_REASONS))
            return builder.done()

        late_rate, plan.incident = self._late_rate(run, due)
        late = rng.random() < late_rate
        resolved = 0
        if not late:
            resolved = self._advance(rng, t, due, 0.1, 0.95)
            late = resolved >= due  # no room left before the due instant
        if late:
            apology_at = 0
            if rng.random() < r.apology:  # issued before the due, while still in process
                t = apology_at = self._advance(rng, t, due, 0.3, 0.95)
            mean = r.incident_late_mean_days if plan.incident else r.late_mean_days
            delay = self._day_len * (0.1 + rng.expovariate(1.0 / mean))
            resolved = self._axis.at(self._axis.w(due) + int(delay))
            resolved = max(resolved, due + 1, t + 1)
            if apology_at:
                # Most apology slips promise the day it is really resolved; some promise
                # a working day too early and are missed again.
                promised = resolved
                if rng.random() < 0.2:
                    promised = self._axis.at(max(0, self._axis.w(resolved) - self._day_len))
                promised_day = _local_day(max(promised, apology_at))
                builder.add(
                    apology_at,
                    EventType.APOLOGY_ISSUED,
                    builder.status,
                    apology_appointment_at=_dt(promised_day * _DAY - _OFFSET + self._we),
                )
        plan.intended_late = late
        plan.resolved_at = resolved
        builder.add(resolved, EventType.RESOLVED, Status.RESOLVED)
        if rng.random() < r.returned:
            if arrival.mode is OnlineMode.FULL:
                returned = resolved + 30 + int(rng.random() * 1770)  # the result is sent online
            else:
                returned = self._staff_after(rng, resolved, 0.05, 2.0)
            plan.returned_at = returned
            builder.add(returned, EventType.RETURNED, Status.RETURNED)
        return builder.done()


class _EventBuilder:
    """Collects one dossier's events in order, keeping only those before the end."""

    __slots__ = ("_base", "_end", "_last", "_plan", "_rng", "status")

    def __init__(
        self,
        sim: WorkloadSimulator,
        rng: random.Random,
        run: _AgencyRun,
        plan: DossierPlan,
        proc_ref: dict[str, str],
    ) -> None:
        self._plan = plan
        self._rng = rng
        self._end = sim.end_ts
        self._last = 0
        self.status = Status.SUBMITTED
        self._base = (run.agency_ref, proc_ref, plan.channel, plan.online_mode)

    def add(
        self,
        ts: int,
        event_type: EventType,
        status: Status,
        *,
        time_limit: dict[str, Any] | None = None,
        appointment_at: datetime | None = None,
        clock: ClockAction | None = None,
        reason: str | None = None,
        apology_appointment_at: datetime | None = None,
    ) -> None:
        # Each event strictly after the previous one: the order a reader sees is the order.
        if ts <= self._last:
            raise AssertionError(f"{self._plan.dossier_id}: {event_type} not after the previous")
        self._last = ts
        self.status = status
        rng = self._rng
        event_id = UUID(int=rng.getrandbits(128), version=4)
        delay = 1 + int(rng.random() * 30)
        if ts >= self._end:
            return
        plan = self._plan
        occurred = _dt(ts)
        agency, proc, channel, mode = self._base
        plan.times.append(ts)
        plan.events.append(
            SimEvent(
                event_id,
                plan.dossier_id,
                len(plan.events) + 1,
                event_type,
                status,
                occurred,
                occurred + timedelta(seconds=delay),
                agency,
                proc,
                channel,
                mode,
                time_limit,
                appointment_at,
                clock,
                reason,
                apology_appointment_at,
            )
        )

    def done(self) -> DossierPlan:
        return self._plan
