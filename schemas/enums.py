"""Code lists of the dossier contract (national codes where they exist)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Status(IntEnum):
    """National dossier status code (TrangThaiHoSo)."""

    SUBMITTED = 1  # Mới đăng ký
    ACCEPTED = 2  # Được tiếp nhận
    REFUSED = 3  # Không được tiếp nhận
    IN_PROCESS = 4  # Đang xử lý
    SUPPLEMENT_REQUESTED = 5  # Yêu cầu bổ sung giấy tờ
    FEE_REQUESTED = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ
    STOPPED = 8  # Dừng xử lý
    RESOLVED = 9  # Đã xử lý xong
    RETURNED = 10  # Đã trả kết quả

    @property
    def label_vi(self) -> str:
        return STATUS_LABELS_VI[self]


STATUS_LABELS_VI: dict[Status, str] = {
    Status.SUBMITTED: "Mới đăng ký",
    Status.ACCEPTED: "Được tiếp nhận",
    Status.REFUSED: "Không được tiếp nhận",
    Status.IN_PROCESS: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.FEE_REQUESTED: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.RESOLVED: "Đã xử lý xong",
    Status.RETURNED: "Đã trả kết quả",
}


class Channel(StrEnum):
    """How the dossier was submitted (KenhThucHien 1, 2, 3)."""

    IN_PERSON = "in_person"  # 1: trực tiếp
    ONLINE = "online"  # 2: trực tuyến
    POST = "post"  # 3: bưu chính

    @property
    def national_code(self) -> int:
        return {Channel.IN_PERSON: 1, Channel.ONLINE: 2, Channel.POST: 3}[self]


class OnlineMode(StrEnum):
    """For online dossiers: full (toàn trình) or partial (một phần) online service."""

    FULL = "full"
    PARTIAL = "partial"


class ClockAction(StrEnum):
    """What a supplement request or its answer does to the deadline clock."""

    PAUSE = "pause"  # supplement requested: the clock stops
    RESUME = "resume"  # supplement received: the clock goes on where it stopped
    RESTART = "restart"  # supplement received: the full time limit counts again


class TimeUnit(StrEnum):
    """Unit of a procedure's time limit."""

    WORKING_DAYS = "working_days"  # ngày làm việc
    CALENDAR_DAYS = "calendar_days"  # ngày
    HOURS = "hours"  # giờ làm việc


class AgencyLevel(StrEnum):
    """Level of the receiving agency after the 2025 two-level reform."""

    CITY = "city"  # city departments and other city-level bodies (sở, ban, ngành)
    COMMUNE = "commune"  # commune-level units: xã, phường, đặc khu


class ProcedureField(StrEnum):
    """Field (lĩnh vực) of a procedure, used for per-field aggregates."""

    CIVIL_STATUS = "civil_status"  # hộ tịch
    LAND = "land"  # đất đai
    CONSTRUCTION = "construction"  # xây dựng
    BUSINESS = "business"  # đăng ký kinh doanh
    TRANSPORT = "transport"  # giao thông vận tải
    HEALTH = "health"  # y tế
    EDUCATION = "education"  # giáo dục
    LABOUR = "labour"  # lao động, việc làm, người có công
    SOCIAL = "social"  # bảo trợ xã hội
    CULTURE = "culture"  # văn hóa, thể thao, du lịch
    SCIENCE = "science"  # khoa học, công nghệ
    JUSTICE = "justice"  # tư pháp
    SECURITY = "security"  # an ninh trật tự (cư trú, căn cước)
    FINANCE = "finance"  # tài chính, đầu tư
    ENVIRONMENT = "environment"  # tài nguyên, môi trường, nông nghiệp
    OTHER = "other"


class EventType(StrEnum):
    """What happened to the dossier. Each type allows a fixed set of status codes."""

    SUBMITTED = "submitted"  # 1
    ACCEPTED = "accepted"  # 2: receipt; the clock starts, the appointment is given
    REFUSED = "refused"  # 3
    PROCESSING = "processing"  # 4
    SUPPLEMENT_REQUESTED = "supplement_requested"  # 5: the clock pauses
    SUPPLEMENT_RECEIVED = "supplement_received"  # 4: the clock resumes
    FEE_REQUESTED = "fee_requested"  # 6
    FEE_PAID = "fee_paid"  # 4
    WITHDRAWN = "withdrawn"  # 7
    STOPPED = "stopped"  # 8
    RESOLVED = "resolved"  # 9
    RETURNED = "returned"  # 10
    TRANSFERRED = "transferred"  # no status change: moved between agencies' desks
    APOLOGY_ISSUED = "apology_issued"  # no status change: phiếu xin lỗi with a new date
