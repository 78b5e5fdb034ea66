"""Browser tests: Debian's headless Chromium driven by Playwright (never a downloaded browser).

Pages are the real running programs (started through tests/e2e/harness.Stack); screenshots go to
$EVC_VAR/screenshots (git-ignored).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import broker, repo, stack  # noqa: F401  (the same real services)
from tests.e2e.harness import ROOT, LOG_DIR

SCREENSHOTS = LOG_DIR.parent.parent / "screenshots"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Debian's Chromium (scripts/browser.sh installs it)."""
    found = os.environ.get("EVC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        found = subprocess.run([str(ROOT / "scripts/browser.sh")], capture_output=True, text=True, check=True).stdout.strip()
    return found


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser):
    """Open pages in a fresh context; all closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot under $EVC_VAR/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
