"""How long each report page is for a reviewer, and what they would meet on it.

    .venv/bin/cem run -p n_people=2000 --out /tmp/rep
    .venv/bin/python benchmarks/report_screens.py /tmp/rep/latest --shots /tmp/rep-shots

Opens the run index and each stage's reviewer page (``NN_stage.html``, no code) of one run
folder in headless Chromium at 1400x900, prints per page its height in screens of 900 px and
the problems the browser test fails on (horizontal overflow, stderr areas, ``nan`` / ``e+NN`` /
``.000000`` text, tables of more than 20 visible rows, external scripts or stylesheets, more
than 8 screens), and writes a full-page screenshot of each page to ``--shots``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project's tests package

from tests.pipeline.browser import chromium_path, read_pages, reader_problems  # noqa: E402


def reviewer_pages(run_dir: Path) -> list[Path]:
    """The run index, then each stage's page without code, in stage order."""
    run_dir = run_dir.resolve()
    pages = [run_dir / "index.html"]
    pages += sorted(
        p for p in run_dir.glob("[0-9][0-9]_*.html") if not p.name.endswith(".code.html")
    )
    return [p for p in pages if p.is_file()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a run folder: reports/<run_id> or reports/latest")
    ap.add_argument("--shots", type=Path, default=None, help="folder for full-page screenshots")
    args = ap.parse_args(argv)
    exe = chromium_path()
    if exe is None:
        print("no Chromium found (apt-get install chromium, or set $CHROMIUM)", file=sys.stderr)
        return 2
    pages = reviewer_pages(args.run_dir)
    if not pages:
        print(f"{args.run_dir}: no report pages", file=sys.stderr)
        return 2
    found = read_pages(pages, exe, args.shots)
    print(f"{'page':<22} {'screens':>7}  problems")
    for path in pages:
        f = found[str(path)]
        problems = reader_problems(f)
        print(f"{path.stem:<22} {f['screens']:>7.1f}  {len(problems)}")
        for p in problems:
            print(f"{'':<32}- {p[:150]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
