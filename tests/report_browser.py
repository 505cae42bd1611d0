"""Open a report's pages in headless Chromium (Playwright driving the system's browser) and say what a
reader's browser would: console errors, failed or external requests, images that did not decode,
formulas that did not render as MathML, and pages wider than the screen.

    python tests/report_browser.py RESULT_DIR [SCREENSHOT_DIR]     check, and save screenshots

The tests (tests/test_report.py) use `check_pages`; they are skipped where no browser is installed.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "",
                             shutil.which("google-chrome") or "") if p and Path(p).exists()), None)
# no network here or on users' clusters: Chromium's own background connections are switched off
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def missing() -> str | None:
    """Why the browser check cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if CHROMIUM is None:
        return "no Chromium found (Debian: apt-get install chromium)"
    return None


def check_pages(pages: list[Path], screenshots: Path | None = None) -> dict:
    """{page name: {size: findings}} where findings hold the console errors, requests that left the
    file or failed, images not decoded, formulas counted and rendered, and the page's scroll width."""
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for page_path in pages:
            for size, (width, height) in SIZES.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                errors, external = [], []
                page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                page.on("request", lambda r, external=external: external.append(r.url)
                        if not r.url.startswith(("file:", "data:")) else None)
                page.goto(page_path.resolve().as_uri(), wait_until="load")
                found = page.evaluate("""() => ({
                    images: document.images.length,
                    undecoded: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length,
                    formulas: document.querySelectorAll('math').length,
                    unrendered: Array.from(document.querySelectorAll('math'))
                        .filter(m => m.getBoundingClientRect().height < 5 || m.getBoundingClientRect().width < 5).length,
                    scroll_width: document.documentElement.scrollWidth,
                    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
                })""")
                out.setdefault(page_path.name, {})[size] = {**found, "errors": errors, "external": external,
                                                            "width": width}
                if screenshots is not None:
                    screenshots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshots / f"{page_path.stem}-{size}.png"))
                page.close()
        browser.close()
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1])
    reason = missing()
    if reason:
        sys.exit(reason)
    pages = [root / "report.html"] + sorted(root.glob("report-*.html"))
    for name, sizes in check_pages(pages, Path(sys.argv[2]) if len(sys.argv) > 2 else None).items():
        for size, f in sizes.items():
            print(f"{name} {size}: {f['images']} images ({f['undecoded']} undecoded), {f['formulas']} formulas "
                  f"({f['unrendered']} unrendered), width {f['scroll_width']}/{f['width']}, "
                  f"{len(f['errors'])} console errors, {len(f['external'])} outside requests")
