"""What every notebook shares: PII masking, headline figures, the verdict, the house style of
tables and plots, and the glossary of plain-language names."""

from cemlib.reports.glossary import label, relabel
from cemlib.reports.headlines import load_headlines, save_headlines
from cemlib.reports.masking import mask_email, mask_frame, mask_name, mask_phone
from cemlib.reports.plots import show, use_style
from cemlib.reports.tables import (
    fmt_cell,
    fmt_days,
    fmt_number,
    fmt_pct,
    fmt_probability,
    fmt_rub,
    show_figures,
    show_table,
    table_html,
)
from cemlib.reports.verdict import Verdict, load_verdict, make_verdict, verdict, verdict_path

__all__ = [
    "Verdict",
    "fmt_cell",
    "fmt_days",
    "fmt_number",
    "fmt_pct",
    "fmt_probability",
    "fmt_rub",
    "label",
    "load_headlines",
    "load_verdict",
    "make_verdict",
    "mask_email",
    "mask_frame",
    "mask_name",
    "mask_phone",
    "relabel",
    "save_headlines",
    "show",
    "show_figures",
    "show_table",
    "table_html",
    "use_style",
    "verdict",
    "verdict_path",
]
