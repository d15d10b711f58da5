"""What a person reads on the dashboard: Vietnamese labels with their English beside them."""

from __future__ import annotations

WINDOW_LABELS: dict[str, tuple[str, str]] = {
    "1h": ("1 giờ", "1 hour"),
    "24h": ("24 giờ", "24 hours"),
    "7d": ("7 ngày", "7 days"),
    "30d": ("30 ngày", "30 days"),
    "mtd": ("Từ đầu tháng", "month to date"),
    "qtd": ("Từ đầu quý", "quarter to date"),
    "ytd": ("Từ đầu năm", "year to date"),
}

LEVEL_LABELS: dict[str, tuple[str, str]] = {
    "all": ("Tất cả", "all"),
    "city": ("Sở, ban, ngành", "departments"),
    "commune": ("Xã, phường, đặc khu", "communes and wards"),
}

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "received_total": ("Tiếp nhận", "received"),
    "online_ratio": ("Trực tuyến", "online"),
    "full_online_ratio": ("Toàn trình", "full online"),
    "on_time_rate": ("Đúng hạn (766)", "on-time rate"),
    "overdue_now": ("Quá hạn", "overdue now"),
    "near_due_now": ("Sắp trễ", "near due now"),
    "open_now": ("Đang xử lý", "open"),
    "not_yet_due_now": ("Trong hạn", "not yet due"),
    "became_overdue": ("Trở thành quá hạn", "became overdue"),
    "resolved_on_time": ("Giải quyết đúng hạn", "resolved on time"),
    "resolved_late": ("Giải quyết trễ hạn", "resolved late"),
    "name": ("Đơn vị", "agency"),
    "rising": ("Quá hạn 24 giờ qua", "overdue, last 24 h"),
}

MARK_LABELS: dict[str, tuple[str, str]] = {
    "below": ("Dưới chỉ tiêu", "below target"),
    "rising": ("Quá hạn tăng", "overdue rising"),
    "alert": ("Có cảnh báo", "open alert"),
}

SEVERITY_LABELS: dict[str, tuple[str, str]] = {
    "warning": ("Cảnh báo", "warning"),
    "critical": ("Nghiêm trọng", "critical"),
}


def both(pair: tuple[str, str]) -> str:
    """`Tiếp nhận (received)`: the Vietnamese label with the English beside it."""
    return f"{pair[0]} ({pair[1]})"
