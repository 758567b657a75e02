"""The reports in real headless Chromium (Debian's ``chromium``; ``make test`` installs it).

Each page is opened from disk (``file://``): no console message of type error or warning, no
request but the file itself (images are ``data:`` URLs, which Chromium does not fetch), every
image decoded, the main sections present and visible, and a screenshot taken. Without a
Chromium these tests fail with instructions: CI installs it, and a skipped browser test would
hide a broken report.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from t2iaudit.cli import app

CHROMIUM = os.environ.get("T2IAUDIT_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORT_SECTIONS = ("verdict", "prompt-sets", "adherence", "judge-validity", "contact-sheets", "provenance")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser` (apt-get install -y chromium) or set "
            "T2IAUDIT_CHROMIUM to a Chromium binary; the report's browser tests need it",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


def open_page(browser: Any, html: Path, shot: Path) -> tuple[Any, list[str], list[str]]:
    """Open ``html`` from disk; returns the page, problems seen on the console and foreign requests."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url[:80]}"))
    own = html.resolve().as_uri()
    page.on("request", lambda r: None if r.url == own or r.url.startswith("data:") else requests.append(r.url[:120]))
    page.goto(own, wait_until="load")
    page.screenshot(path=str(shot), full_page=False)
    return page, problems, requests


def check_images_decoded(page: Any) -> int:
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0
    return page.evaluate("document.images.length")


def test_smoke_report_in_chromium(browser: Any, report_smoke_run: Path, tmp_path: Path):
    shot = tmp_path / "smoke.png"
    page, problems, requests = open_page(browser, report_smoke_run / "report.html", shot)
    assert problems == [] and requests == []
    for section in REPORT_SECTIONS:
        assert page.locator(f"section#{section} h2").is_visible(), section
    assert page.locator("#verdict-table tbody tr").count() == 2
    assert check_images_decoded(page) > 12
    assert page.evaluate("typeof window.fetch") == "function"  # the page ran in a real browser engine
    assert shot.stat().st_size > 10_000
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 900) and len(set(im.convert("L").getdata())) > 10  # something was drawn


def test_imported_labels_report_in_chromium(browser: Any, report_imported_run: Path, tmp_path: Path):
    assert CliRunner().invoke(app, ["report", str(report_imported_run)]).exit_code == 0
    page, problems, requests = open_page(browser, report_imported_run / "report.html", tmp_path / "imported.png")
    assert problems == [] and requests == []
    for section in REPORT_SECTIONS:
        assert page.locator(f"section#{section} h2").is_visible(), section
    assert "no image files" in page.locator("section#contact-sheets").inner_text()
    assert page.locator(".thumb").count() == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 0  # the markup in a prompt stayed text
    check_images_decoded(page)


def test_compare_and_labelling_pages_in_chromium(browser: Any, report_smoke_run: Path, tmp_path: Path):
    out = tmp_path / "compare.html"
    result = CliRunner().invoke(
        app, ["compare", str(report_smoke_run), "--between", "template_id=photo,gender", "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    page, problems, requests = open_page(browser, out, tmp_path / "compare.png")
    assert problems == [] and requests == [] and page.locator("section.comparison").count() == 2
    assert check_images_decoded(page) > 0
    sheet = tmp_path / "labelling"
    result = CliRunner().invoke(app, ["sample-for-labelling", str(report_smoke_run), "--n", "6", "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    page, problems, requests = open_page(browser, sheet / "sheet.html", tmp_path / "sheet.png")
    assert problems == [] and requests == []
    assert page.locator("figure.thumb").count() == 6 and check_images_decoded(page) == 6
