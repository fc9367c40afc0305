"""CPU seconds of reading a 200,000-row CRM export with ``read_table_file``: the clean file
(pandas' C parser, the fast path) and the same file with one line longer than the header (read
again record by record with :mod:`csv`, the line set aside as a row defect).

    PYTHONPATH=. python benchmarks/csv_long_lines.py [--rows 200000] [--out /tmp/csv_long_lines]

Prints one line per file: rows, lines set aside, CPU seconds (best of ``--repeat``), peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np


def write_export(path: Path, rows: int, long_at: int | None) -> None:
    rng = np.random.default_rng(7)
    phones = rng.integers(9_000_000_000, 9_999_999_999, rows)
    days = rng.integers(1, 28, rows)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("contact_id;full_name;phone;email;city;registered_at\n")
        for i in range(rows):
            name = f"Иванова; Анна {i}" if i == long_at else f"Иванова Анна {i}"
            fh.write(f"C{i};{name};+7{phones[i]};user{i}@mail.ru;Москва;{days[i]:02d}.03.2024\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="/tmp/csv_long_lines")
    args = ap.parse_args()
    from cemlib.collect.loaders import read_table_file
    from cemlib.errors import InputError

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for label, long_at in (("clean", None), ("one long line", args.rows // 2)):
        path = out / f"{label.replace(' ', '_')}" / "crm_contacts.csv"
        path.parent.mkdir(exist_ok=True)
        write_export(path, args.rows, long_at)
        best = float("inf")
        try:
            for _ in range(args.repeat):
                t0 = time.process_time()
                t = read_table_file(path, "crm_contacts")
                best = min(best, time.process_time() - t0)
        except InputError as exc:  # a cemlib before row defects: the whole file refused
            print(f"{label:<14} refused in {time.process_time() - t0:.2f} s CPU: {exc}"[:200])
            continue
        long = getattr(t, "long_lines", None)
        aside = 0 if long is None else len(long)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{label:<14} rows {t.n_rows:>8,}  set aside {aside}  cpu {best:6.2f} s  "
            f"peak rss {rss:,.0f} MB"
        )


if __name__ == "__main__":
    main()
