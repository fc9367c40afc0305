"""Great Expectations' own Data Docs for a run, written as a static site beside the report.

The results a run stored in its in-memory context are re-stored with the unexpected values of
personal columns masked (phones, emails, names: ``cemlib.reports`` maskers), then the site is
built with Great Expectations' ``SiteBuilder`` into a folder. Nothing is fetched from the network
while building; the pages link Bootstrap/jQuery from a CDN when opened in a browser.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from cemlib.reports import mask_email, mask_name, mask_phone

SITE = "cem_quality"


def _masker(columns: list[str]):
    text = " ".join(c.lower() for c in columns if c)
    if "phone" in text:
        return mask_phone
    if "email" in text:
        return mask_email
    if "name" in text or "address" in text:
        return mask_name
    if "birth" in text:
        return lambda v: "***" if v is not None else v
    return None


def _mask_result(result: Any) -> None:
    cfg = result.expectation_config
    cols = [cfg.kwargs.get("column")]
    cond = cfg.kwargs.get("row_condition")
    if cond is not None:
        cols.append(str(cond))
    mask = _masker(cols)
    res = result.result or {}
    if mask is None or not res:
        return
    if "partial_unexpected_list" in res:
        res["partial_unexpected_list"] = [
            mask(v) if v is not None else v for v in res["partial_unexpected_list"]
        ]
    if "partial_unexpected_counts" in res:
        res["partial_unexpected_counts"] = [
            {**d, "value": mask(d.get("value")) if d.get("value") is not None else None}
            for d in res["partial_unexpected_counts"]
        ]


def write_data_docs(context: Any, out_dir: str | Path) -> Path:
    """Build the Data Docs of every validation stored in ``context`` into ``out_dir``.

    Returns the path of the site's ``index.html``.
    """
    out = Path(out_dir).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = context.validation_results_store
    for key in store.list_keys():
        suite_result = store.get(key)
        for r in suite_result.results:
            _mask_result(r)
        store.set(key, suite_result)
    sites = context.variables.data_docs_sites or {}
    if SITE not in sites:
        context.add_data_docs_site(
            site_name=SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(out),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    context.build_data_docs(site_names=[SITE])
    return out / "index.html"
