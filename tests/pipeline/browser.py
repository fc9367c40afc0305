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
