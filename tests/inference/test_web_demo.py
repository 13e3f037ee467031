"""The web demo in headless Chromium: upload a clip, add a subtitle, ask, see the streamed answer and the
label probabilities, ask a follow-up. Keeps a screenshot at test-artifacts/web_demo.png.

Needs the system Chromium (/usr/bin/chromium, Debian package ``chromium``) and the ``playwright``
Python package (no browser download); skipped cleanly when either is missing.
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def untrained_server(feature_cache):
    """A server over the untrained tiny-fast preset with room for long answers (to press Stop)."""
    from emollm.inference.chat import open_predictor
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    pred = open_predictor("tiny-fast", feature_cache, device="cpu")
    app = create_app(pred, ServeSettings(model_id="tiny-untrained", max_new_tokens=1500))
    with BackgroundServer(app) as url:
        yield url, app


def _watch(page, url: str) -> tuple[list[str], list[dict]]:
    errors: list[str] = []
    bodies: list[dict] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_request(r) -> None:
        if not (r.url.startswith(url) or r.url.startswith("blob:")):
            errors.append(r.url)
        elif r.url.endswith("/v1/chat/completions") and r.method == "POST":
            bodies.append(json.loads(r.post_data or "{}"))

    page.on("request", on_request)
    return errors, bodies


def _shot(page, tmp_path: Path, name: str) -> Path:
    out = tmp_path / name
    page.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 5_000
    ARTIFACTS.mkdir(exist_ok=True)  # test-artifacts/ is git-ignored: kept for a look, never committed
    shutil.copy(out, ARTIFACTS / name)
    return out


def test_web_page_trained_desktop_max_tokens_and_clean_turns(browser, server, test_samples, tmp_path) -> None:
    url, _ = server
    man, samples = test_samples
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors, bodies = _watch(page, url)
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('tiny-test')")
    assert not page.locator("#untrained").is_visible()  # a checkpoint: no banner
    assert page.input_value("#max-tokens") == "32"  # clamped to the server's cap
    # a non-media file: a note, no broken <img>/<video>, nothing uploaded
    txt = tmp_path / "notes.txt"
    txt.write_text("not a clip")
    page.set_input_files("#file", str(txt))
    assert "not a video, audio or image" in page.inner_text("#preview")
    assert page.locator("#preview img, #preview video, #preview audio").count() == 0
    # a text-only question: no label probabilities; an empty label question does not show "[label]"
    page.fill("#max-tokens", "6")
    page.fill("#question", "hello there")
    page.click("#ask")
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
    assert page.locator("#probs .bar").count() == 0 and "no clip" in page.inner_text("#probs")
    page.select_option("#task", "label")
    page.click("#ask")
    page.wait_for_function("document.querySelectorAll(\"#log .text[data-done='1']\").length === 2", timeout=60_000)
    you = [t.strip() for t in page.locator("#log .turn").all_inner_texts()[::2]]
    assert all("[label]" not in t and "[explain]" not in t for t in you), you
    assert page.locator("#probs .bar").count() == 0
    assert [(b["max_tokens"], b["emollm"].get("probs")) for b in bodies] == [(6, False), (6, False)], bodies
    # the decoding defaults shown and sent are the server's (GenerationOptions)
    assert [(b["repetition_penalty"], b["no_repeat_ngram_size"]) for b in bodies] == [(1.15, 4)] * 2
    # then a clip: probabilities appear
    page.set_input_files("#file", str(man.media_path(samples[4], "video")))
    assert page.locator("#preview video").count() == 1
    page.click("#ask")
    page.wait_for_function("document.querySelectorAll(\"#log .text[data-done='1']\").length === 3", timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#probs .bar').length === 6")
    assert bodies[-1]["emollm"]["probs"] is True and len(bodies[-1]["messages"]) == 5
    _shot(page, tmp_path, "web_desktop.png")
    assert errors == []
    page.close()


def test_web_page_phone_width_untrained_banner_and_stop(browser, untrained_server, tmp_path) -> None:
    url, app = untrained_server
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    errors, bodies = _watch(page, url)
    page.goto(url + "/")
    page.wait_for_function("document.getElementById('model').textContent.includes('tiny-untrained')")
    banner = page.locator("#untrained")
    assert banner.is_visible() and "untrained" in banner.inner_text() and "make demo" in banner.inner_text()
    # the layout fits 390 px: no horizontal scrolling, every control inside the viewport
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for sel in ("#ask", "#stop", "#reset", "#question", "#max-tokens", "#log"):
        box = page.locator(sel).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (sel, box)
    before = dict(app.state.cancelled)
    page.fill("#max-tokens", "1500")
    page.fill("#question", "Tell me everything.")
    page.click("#ask")
    page.wait_for_function(
        "document.querySelector('#log .text[data-done]') && "
        "document.querySelector('#log .text[data-done]').textContent.length > 0",
        timeout=60_000,
    )
    page.click("#stop")
    page.wait_for_function("document.getElementById('status').textContent === 'stopped'", timeout=60_000)
    assert page.locator("#log .text[data-stopped='1']").count() == 1 and bodies[0]["max_tokens"] == 1500
    for _ in range(600):  # the server stops generating once the page aborts the request
        if app.state.cancelled.get("disconnected", 0) > before.get("disconnected", 0):
            break
        page.wait_for_timeout(50)
    assert app.state.cancelled.get("disconnected", 0) == before.get("disconnected", 0) + 1
    # the conversation goes on after a stop (the partial answer is part of the history)
    page.fill("#max-tokens", "4")
    page.fill("#question", "And briefly?")
    page.click("#ask")
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=60_000)
    assert len(bodies[-1]["messages"]) == 3 and bodies[-1]["messages"][1]["role"] == "assistant"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert "/reset" not in page.content()  # no CLI commands on the page
    _shot(page, tmp_path, "web_phone.png")
    assert errors == []
    page.close()
