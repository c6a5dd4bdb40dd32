"""The web app in a real browser: Debian's Chromium driven by Playwright, against one app per module.

Asks the seed questions in English and Arabic, checks the answer, its [n] marker, the highlighted
source sentence and its direction; uploads a document and asks about it; checks that a document full
of <script>, <img onerror> and Markdown renders as text; rates an answer and exports the conversation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import serve_seed_app
from web import app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"
XSS_DOC = Path(__file__).parent / "fixtures" / "xss_notice.md"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSWER_TIMEOUT_MS = 180_000  # a bound against a hung page on a loaded CI machine, not a speed test
BOT = "#qa-chat [data-testid='bot']"


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    """(assistant, url) of the app serving the seed article; closed after the module."""
    with serve_seed_app(tmp_path_factory.mktemp("browser-app"), embedder) as served:
        yield served


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium).")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    """A fresh page on the app (a new session: empty conversation), recording any dialog."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(served[1])
    expect(page.locator("#qa-question textarea")).to_be_visible()
    yield page
    context.close()


def ask(page: Page, question: str) -> None:
    """Type a question, send it, and wait until its answer (not the streaming placeholder) is shown."""
    count = page.locator(BOT).count()
    page.fill("#qa-question textarea", question)
    page.keyboard.press("Enter")
    wait_for_answer(page, count + 1)


def wait_for_answer(page: Page, n: int) -> None:
    page.wait_for_function(
        "n => { const b = document.querySelectorAll(\"#qa-chat [data-testid='bot']\");"
        " return b.length >= n && !b[n - 1].querySelector('.qa-streaming'); }",
        arg=n,
        timeout=ANSWER_TIMEOUT_MS,
    )


def direction(locator) -> str:
    return locator.evaluate("el => getComputedStyle(el).direction")


def test_english_and_arabic_answers_cite_highlighted_sentences(page, served, tmp_path):
    assistant, _ = served
    english, history = (), []
    for i, question in enumerate(["What did the Kremlin deny?", "ماذا نفى الكرملين؟"]):
        # the same conversation as in the page: the second question comes after the first
        expected = assistant.ask(question, history=history)
        history.append((question, expected.answer))
        english = english if i else expected.citations
        ask(page, question)
        bubble = page.locator(BOT).nth(i).locator(".qa-msg")
        text = bubble.inner_text()
        assert "[1]" in text
        assert expected.citations[0].quote in text  # the extractive answer quotes it verbatim
        assert bubble.locator(".qa-ref").first.inner_text() == "[1]"
        assert direction(bubble) == direction(bubble.locator(".qa-lead").first) == ("ltr", "rtl")[i]
        assert direction(bubble.locator(".qa-quote").first) == "rtl"  # an Arabic quote in either answer

        marks = page.locator("#qa-sources mark")
        expect(marks).to_have_count(len(expected.citations))
        for mark, cite in zip(marks.all(), expected.citations):
            assert mark.inner_text().strip() == cite.quote
            assert direction(mark) == "rtl"  # an Arabic passage, even under an English question
        assert cite.doc in page.locator("#qa-sources").inner_text()

    # Clicking the first answer brings its own sources back.
    page.locator(BOT).first.click()
    expect(page.locator("#qa-sources mark").first).to_have_text(english[0].quote)

    # Per-message direction: the English exchange stays left-to-right beside the Arabic one.
    users = page.locator("#qa-chat [data-testid='user'] .qa-msg")
    assert [direction(u) for u in users.all()] == ["ltr", "rtl"]
    shot = tmp_path / "chat.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert not page.dialogs


def test_example_feedback_and_export(page, served):
    assistant, _ = served
    page.get_by_role("button", name=app.EXAMPLES[0], exact=True).click()
    wait_for_answer(page, 1)
    expected = assistant.ask(app.EXAMPLES[0])

    feedback = Path(assistant.settings.feedback_path)
    before = feedback.read_text(encoding="utf-8").splitlines() if feedback.exists() else []
    page.locator(BOT).first.hover()
    page.locator("#qa-chat").get_by_role("button", name="Like", exact=True).first.click()
    expect(page.get_by_text("your rating was saved")).to_be_visible(timeout=30_000)
    record = json.loads(feedback.read_text(encoding="utf-8").splitlines()[len(before)])
    assert record["question"] == app.EXAMPLES[0] and record["rating"] == "up"
    assert record["evidence"] == [c.quote for c in expected.citations]

    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Export JSON").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    cites = data["turns"][0]["answer"]["citations"]
    assert [(c["doc"], c["start"], c["end"]) for c in cites] == [
        (c.doc, c.start, c.end) for c in expected.citations
    ]


def test_upload_ask_and_document_text_stays_inert(page, served, tmp_path):
    assistant, _ = served
    page.get_by_role("tab", name="Documents").click()
    upload = page.locator("#qa-upload input[type=file]")
    status = page.locator("#qa-doc-status")
    upload.set_input_files(str(XSS_DOC))
    expect(status).to_contain_text(f"Added: {XSS_DOC.name}", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#qa-docs")).to_contain_text(XSS_DOC.name)
    upload.set_input_files(str(XSS_DOC))  # the same file again changes nothing
    expect(status).to_contain_text(f"unchanged: {XSS_DOC.name}", timeout=ANSWER_TIMEOUT_MS)
    assert [d.id for d in assistant.documents()].count(XSS_DOC.name) == 1

    page.get_by_role("tab", name="Sources").click()
    ask(page, "What is the password of the vault?")
    assert "tangerine" in page.locator(BOT).nth(0).inner_text()
    ask(page, "What did the attacker write into the notice board?")
    answer = page.locator(BOT).nth(1).inner_text()
    assert "<script>" in answer or "<img" in answer  # shown as the characters the document holds
    sources = page.locator("#qa-sources")
    assert XSS_DOC.name in sources.inner_text()
    page.wait_for_timeout(500)  # give an injected onerror or script the chance to run
    injected = page.evaluate(
        "() => ({xss: window.__xss, imgs: document.querySelectorAll('#qa-chat img, #qa-sources img').length,"
        " scripts: document.querySelectorAll('#qa-chat script, #qa-sources script').length,"
        " links: document.querySelectorAll('#qa-chat a, #qa-sources a').length})"
    )
    assert injected == {"xss": None, "imgs": 0, "scripts": 0, "links": 0}
    assert not page.dialogs
    page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)

    page.get_by_role("tab", name="Documents").click()
    page.locator("#qa-remove input").click()
    page.get_by_role("option", name=XSS_DOC.name).click()
    page.get_by_role("button", name="Remove", exact=True).click()
    expect(status).to_contain_text(f"Removed {XSS_DOC.name}", timeout=60_000)
    expect(page.locator("#qa-docs")).not_to_contain_text(XSS_DOC.name)


def test_question_error_is_a_readable_message(page, served):
    limit = served[0].settings.max_question_chars
    page.fill("#qa-question textarea", "why " * (limit // 4 + 10))
    page.click("#qa-send")
    wait_for_answer(page, 1)
    bubble = page.locator(BOT).first.locator(".qa-error")
    expect(bubble).to_contain_text(f"the limit is {limit}")
    assert "Traceback" not in page.content()
