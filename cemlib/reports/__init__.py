"""What every notebook shares: PII masking, headline figures, plotting style."""

from cemlib.reports.headlines import load_headlines, save_headlines
from cemlib.reports.masking import mask_email, mask_frame, mask_name, mask_phone

__all__ = [
    "load_headlines",
    "mask_email",
    "mask_frame",
    "mask_name",
    "mask_phone",
    "save_headlines",
]
