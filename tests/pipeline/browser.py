"""Open report pages in headless Chromium and list what a reviewer would see broken.

Uses Playwright's Python API to drive the system's Chromium (Debian's ``chromium`` package,
installed by ``.ci/run``); Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_LINKS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll('[href], [src]')) {
    const attr = el.hasAttribute('href') ? 'href' : 'src';
    out.push({tag: el.tagName.toLowerCase(), attr, value: el.getAttribute(attr), url: el[attr] || ''});
  }
  return out;
}"""
_IMAGES_JS = """() => [...document.images].map(img => ({
  src: (img.getAttribute('src') || '').slice(0, 60), complete: img.complete,
  width: img.naturalWidth, height: img.naturalHeight}))"""


def chromium_path() -> str | None:
    """The Chromium executable ($CHROMIUM, then chromium / chromium-browser / chrome on PATH)."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _ids_in(page_path: Path) -> str:
    return page_path.read_text(encoding="utf-8", errors="replace")


def _fragment_exists(html_text: str, fragment: str) -> bool:
    """Browsers match the fragment as written, then percent-decoded (HTML spec)."""
    return any(
        f'id="{f}"' in html_text or f'name="{f}"' in html_text
        for f in (fragment, unquote(fragment))
    )


def _offline_route(found: dict):
    """Let local files through; record and abort anything from the network."""

    def route(r):
        if r.request.url.startswith(("file:", "data:", "about:")):
            r.continue_()
        else:  # reviewers may be offline: nothing may come from the network
            found["broken"].append(f"external request: {r.request.url[:120]}")
            r.abort()

    return route


def check_pages(pages: Iterable[Path], executable: str) -> dict[str, dict]:
    """For each page: console errors, failed or external requests, broken links, image sizes."""
    from playwright.sync_api import sync_playwright

    report: dict[str, dict] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            for path in pages:
                path = Path(path)
                found = {"errors": [], "broken": [], "images": []}
                page = browser.new_page()
                page.on(
                    "console",
                    lambda m, f=found: (
                        f["errors"].append(f"console {m.type}: {m.text}")
                        if m.type == "error"
                        else None
                    ),
                )
                page.on("pageerror", lambda e, f=found: f["errors"].append(f"javascript: {e}"))
                page.on(
                    "requestfailed",
                    lambda r, f=found: f["broken"].append(f"request failed: {r.url[:120]}"),
                )

                page.route("**/*", _offline_route(found))
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(200)  # let late scripts report errors
                text = _ids_in(path)
                for link in page.evaluate(_LINKS_JS):
                    value, url = link["value"] or "", link["url"]
                    if value.startswith(("data:", "mailto:")):
                        continue
                    if value.startswith("#"):
                        if value != "#" and not _fragment_exists(text, value[1:]):
                            found["broken"].append(f"anchor {value} not on the page")
                        continue
                    parsed = urlparse(url)
                    if parsed.scheme in ("http", "https"):
                        if link["attr"] == "src":
                            found["broken"].append(f"external resource {value}")
                        continue
                    target = Path(unquote(parsed.path))
                    if parsed.scheme != "file" or not target.exists():
                        found["broken"].append(f"<{link['tag']} {link['attr']}={value!r}> missing")
                    elif (
                        parsed.fragment
                        and target.is_file()
                        and not _fragment_exists(_ids_in(target), parsed.fragment)
                    ):
                        found["broken"].append(f"{value}: anchor not in {target.name}")
                found["images"] = page.evaluate(_IMAGES_JS)
                report[str(path)] = found
                page.close()
        finally:
            browser.close()
    return report


# -- what a reviewer reads ------------------------------------------------------------------------
VIEWPORT = {"width": 1400, "height": 900}
MAX_SCREENS = 8
MAX_VISIBLE_ROWS = 20
#: text a reviewer should never meet: scientific notation, "nan", pandas' six decimals
BAD_TEXT = r"e\+\d\d|\bnan\b|\.000000"

_READ_JS = r"""(bad) => {
  const doc = document.documentElement;
  const out = {height: doc.scrollHeight, width: doc.scrollWidth, view: window.innerWidth,
               overflow: [], stderr: 0, bad_text: [], long_tables: [], external: []};
  if (doc.scrollWidth > doc.clientWidth + 1) out.overflow.push(`page ${doc.scrollWidth}px wide`);
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || el.closest('details:not([open])')) continue;
    const ox = getComputedStyle(el).overflowX;
    const cut = ox !== 'visible' && el.scrollWidth > el.clientWidth + 2 && el.clientWidth > 0;
    const parent = el.parentElement;  // only the outermost element past the right edge
    const past = r.right > doc.clientWidth + 1 && ox === 'visible' && parent
                 && getComputedStyle(parent).overflowX === 'visible'
                 && parent.getBoundingClientRect().right <= doc.clientWidth + 1;
    if (cut || past) {
      const text = (el.innerText || el.getAttribute('alt') || '').slice(0, 60).replace(/\s+/g, ' ');
      out.overflow.push(`${el.tagName.toLowerCase()} "${text}" ${Math.round(r.right)}px`
                        + (cut ? ` (content ${el.scrollWidth}px in ${el.clientWidth}px)` : ''));
    }
  }
  out.stderr = document.querySelectorAll(
    '[data-mime-type="application/vnd.jupyter.stderr"], .output_stderr').length;
  const re = new RegExp(bad, 'g');
  const text = document.body.innerText;
  let m;
  while ((m = re.exec(text)) !== null && out.bad_text.length < 10) {
    out.bad_text.push(text.slice(Math.max(0, m.index - 40), m.index + 20).replace(/\s+/g, ' '));
  }
  for (const t of document.querySelectorAll('table')) {
    if (t.getClientRects().length === 0 || t.closest('details:not([open])')) continue;
    const rows = [...t.querySelectorAll('tr')].filter(r => r.getClientRects().length > 0
                                                         && !r.querySelector('th'));
    if (rows.length > %d) out.long_tables.push(
      `${rows.length} rows: "${(t.innerText || '').slice(0, 50).replace(/\s+/g, ' ')}"`);
  }
  for (const el of document.querySelectorAll('script[src], link[href]')) {
    const url = el.getAttribute('src') || el.getAttribute('href');
    const rel = (el.getAttribute('rel') || '').toLowerCase();
    if (/^(https?:)?\/\//i.test(url) && (el.tagName === 'SCRIPT' || rel.includes('stylesheet')))
      out.external.push(url);
  }
  return out;
}""".replace("%d", str(MAX_VISIBLE_ROWS))


def read_pages(pages: Iterable[Path], executable: str, shots: Path | None = None) -> dict:
    """Each page as a reviewer reads it at 1400x900: its height in screens, horizontal overflow,
    stderr areas, bad text, long visible tables, external scripts and stylesheets; a full-page
    screenshot of each goes to ``shots`` (named ``<run folder>__<page>.png``)."""
    from playwright.sync_api import sync_playwright

    out: dict[str, dict] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
                ("file:", "data:", "about:")) else r.abort())  # fmt: skip
            for path in pages:
                path = Path(path)
                page.goto(path.as_uri(), wait_until="load")
                found = page.evaluate(_READ_JS, BAD_TEXT)
                found["screens"] = round(found["height"] / VIEWPORT["height"], 1)
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    name = f"{path.parent.name}__{path.stem}.png"
                    page.screenshot(path=str(shots / name), full_page=True)
                    found["screenshot"] = str(shots / name)
                out[str(path)] = found
        finally:
            browser.close()
    return out


def reader_problems(found: dict, max_screens: float = MAX_SCREENS) -> list[str]:
    """What :func:`read_pages` found wrong on one page, one line each."""
    problems = [f"horizontal overflow: {o}" for o in found["overflow"]]
    if found["stderr"]:
        problems.append(f"{found['stderr']} stderr output area(s)")
    problems += [f"text {t!r}" for t in found["bad_text"]]
    problems += [f"table of {t}" for t in found["long_tables"]]
    problems += [f"external script or stylesheet {u}" for u in found["external"]]
    if found["height"] > max_screens * VIEWPORT["height"]:
        problems.append(f"{found['screens']} screens long (at most {max_screens})")
    return problems
