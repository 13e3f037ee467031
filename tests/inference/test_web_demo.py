"""The web demo in headless Chromium: upload a clip, add a subtitle, ask, see the streamed answer and the
label probabilities, ask a follow-up. Keeps a screenshot at test-artifacts/web_demo.png.

Needs the system Chromium (/usr/bin/chromium, Debian package ``chromium``) and the ``playwright``
Python package (no browser download); skipped cleanly when either is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("EMOLLM_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip package) not installed")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_web_demo_streams_an_answer_and_probabilities(browser, server, test_samples) -> None:
    url, _ = server
    man, samples = test_samples
    s = samples[4]
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith("blob:") else errors.append(r.url))
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('tiny-test')")
    page.set_input_files("#file", str(man.media_path(s, "video")))
    page.fill("#subtitle", s.subtitle or "")
    page.fill("#question", "How does this person feel, and why?")
    page.click("#ask")
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
    answers = page.locator("#log .text[data-done='1']")
    assert answers.count() == 1 and answers.first.inner_text().strip()
    bars = page.locator("#probs .bar")
    assert bars.count() == 6
    assert page.locator("#probs .bar.top span").first.inner_text() in {
        "neutral",
        "angry",
        "happy",
        "sad",
        "worried",
        "surprise",
    }
    # a follow-up question in the same conversation, as a label
    page.select_option("#task", "label")
    page.fill("#question", "Which label fits best?")
    page.click("#ask")
    page.wait_for_function("document.querySelectorAll(\"#log .text[data-done='1']\").length === 2", timeout=60_000)
    label = page.locator("#log .text[data-done='1']").nth(1).inner_text().strip()
    assert label == page.locator("#probs .bar.top span").first.inner_text()
    assert errors == []  # no script errors, nothing fetched from outside the server
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web_demo.png"), full_page=True)
    assert (ARTIFACTS / "web_demo.png").stat().st_size > 10_000
    page.close()
