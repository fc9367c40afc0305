"""What every notebook shares: PII masking, headline figures, plotting style."""

from cemlib.reports.headlines import load_headlines, save_headlines
from cemlib.reports.masking import mask_email, mask_frame, mask_name, mask_phone
from cemlib.reports.plots import show, use_style

__all__ = [
    "load_headlines",
    "mask_email",
    "mask_frame",
    "mask_name",
    "mask_phone",
    "save_headlines",
    "show",
    "use_style",
]
