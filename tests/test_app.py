"""The web app without a browser: its API (gradio_client) against `Assistant.ask`, and its handlers.

One app per module, served in a thread on a free loopback port over a seeded tmp Chroma, sharing the
session's embedding model; the handlers called directly over the fast assistant (typed turns in
gr.State, exports, feedback lines); plus one run of `python app.py` itself as users start it.
Leaves out: the HTML itself (tests/test_render.py) and the page in a browser (test_app_browser.py).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

from eval import questions
from qa.errors import InputError
from tests import fakes
from tests.conftest import free_port, serve_seed_app
from web import app, render
from web.render import Turn

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"
QUESTIONS = ["What did the Kremlin deny?", "ماذا نفى الكرملين؟"]


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    """(assistant, url) of the app serving the seed article; closed after the module."""
    with serve_seed_app(tmp_path_factory.mktemp("app"), embedder) as served:
        yield served


def comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "timings_ms"}


@pytest.mark.parametrize("question", QUESTIONS)
def test_api_answers_like_the_assistant(served, question):
    assistant, url = served
    expected = assistant.ask(question).to_dict()
    got = Client(url, verbose=False).predict(question, api_name="/ask")
    assert comparable(got) == comparable(expected)
    assert got["citations"] and not got["abstained"]
    assert "[1]" in got["answer"]


def test_concurrent_questions_are_all_answered(served):
    assistant, url = served
    client = Client(url, verbose=False)
    jobs = [client.submit(q, api_name="/ask") for q in QUESTIONS * 2]
    answers = [job.result(timeout=600) for job in jobs]
    assert [a["answer"] for a in answers] == [assistant.ask(q).answer for q in QUESTIONS * 2]


def test_api_error_is_one_sentence(served):
    _, url = served
    with pytest.raises(Exception) as info:
        Client(url, verbose=False).predict("   ", api_name="/ask")
    message = str(info.value)
    assert "The question is empty" in message
    assert "Traceback" not in message


def test_api_lists_documents(served):
    _, url = served
    docs = Client(url, verbose=False).predict(api_name="/documents")
    assert [d["id"] for d in docs] == [SEED.name]


def test_login_when_auth_is_set(served, tmp_path):
    assistant, _ = served
    users = tmp_path / "users.txt"
    users.write_text("# team\nalice:s3cret\n\nbob:hunter2\n", encoding="utf-8")
    settings = assistant.settings.model_copy(update={"auth": str(users), "port": free_port()})
    demo, url = app.launch(assistant, settings, block=False)
    try:
        with pytest.raises(Exception):  # noqa: B017 (gradio_client raises a plain ValueError)
            Client(url, verbose=False)
        client = Client(url, auth=("bob", "hunter2"), verbose=False)
        assert client.predict(api_name="/documents")[0]["id"] == SEED.name
    finally:
        demo.close()


def test_parse_auth():
    assert app.parse_auth(None) is None
    assert app.parse_auth("ann:pw:with:colons") == [("ann", "pw:with:colons")]
    with pytest.raises(InputError, match="user:password"):
        app.parse_auth("no-colon")


def test_handlers_keep_typed_turns_export_and_save_feedback(fast_seeded):
    """The handlers without a server: a two-turn conversation streamed into `Turn`s, exported, rated."""
    handlers = app.Handlers(fast_seeded, fast_seeded.settings)
    turns: list[Turn] = []
    history: list[tuple[str, str]] = []
    for question in ["Who did Lavrov negotiate with in Moscow?", "What did they agree to fight?"]:
        updates = list(handlers.respond(f"  {question} ", turns, "extractive", 4, "auto"))
        chat, pending, _, box, shown, _ = updates[0]
        assert box == "" and pending[-1] == Turn(pending[-1].id, question) and shown == pending[-1].id
        assert "qa-streaming" in chat[-1]["content"]
        chat, turns, sources, _, shown, _ = updates[-1]
        assert shown == turns[-1].id  # the Sources panel follows the new answer
        expected = fast_seeded.ask(question, k=4, history=history)
        history.append((question, expected.answer))
        assert comparable(turns[-1].answer.to_dict()) == comparable(expected.to_dict())
        assert chat[-1]["content"] == render.answer_html(turns[-1]) and sources == render.sources_html(
            turns[-1]
        )
    assert [t.question for t in copy.deepcopy(turns)] == [t.question for t in turns]  # gr.State copies it
    select = gr.SelectData(None, {"index": 0, "value": None})
    assert handlers.show_sources(turns, select)[:2] == (render.sources_html(turns[0]), turns[0].id)

    md, js = handlers.exports(turns)
    assert md["interactive"] and "## 2. What did they agree to fight?" in Path(md["value"]).read_text("utf-8")
    data = json.loads(Path(js["value"]).read_text(encoding="utf-8"))
    assert data["turns"][1]["answer"] == render.answer_record(turns[1].answer)

    for index, liked in ((1, True), (3, False)):  # the second message of each turn is the answer
        handlers.on_feedback(turns, gr.LikeData(None, {"index": index, "value": None, "liked": liked}))
    rated = questions.load(fast_seeded.settings.feedback_path, strict=True).questions
    assert [(q.id, q.extra["rating"], q.follows) for q in rated] == [
        (turns[0].id, "up", None),
        (turns[1].id, "down", turns[0].id),
    ]
    assert rated[1].extra["history"] == [list(history[0])]


def test_handlers_show_the_draft_as_working_then_the_short_answer(fast_seeded):
    """The quote at once, marked as still working; then the final answer with its short answer."""
    question = "أين غرفة العمليات المشتركة الروسية الأميركية؟"
    reply = json.dumps({"n": 1, "span": "في الأردن", "answer": "في الأردن"}, ensure_ascii=False)
    fakes.ScriptedChat.script = [reply, reply]  # the page's question, then the expected ask below
    try:
        updates = list(
            app.Handlers(fast_seeded, fast_seeded.settings).respond(question, [], "extractive", 4, "ar")
        )
        expected = fast_seeded.ask(question, k=4, answer_language="ar")
    finally:
        fakes.ScriptedChat.script = []
    assert expected.short_answer is not None and expected.short_answer.quote == "في الأردن"
    drafts = [u for u in updates[1:-1] if u[1][-1].draft]
    assert len(drafts) == 1
    chat, turns, *_ = drafts[0]
    assert turns[-1].answer.short_answer is None and turns[-1].answer.citations
    assert "qa-streaming" in chat[-1]["content"] and "جارٍ البحث عن الجواب المختصر…" in chat[-1]["content"]
    assert "qa-short" not in chat[-1]["content"]

    chat, turns, sources, *_ = updates[-1]
    assert not turns[-1].draft and comparable(turns[-1].answer.to_dict()) == comparable(expected.to_dict())
    final = chat[-1]["content"]
    assert "qa-streaming" not in final and "qa-working" not in final
    assert final.index('class="qa-short"') < final.index('class="qa-quote"')
    assert (
        '<mark class="qa-span">في الأردن</mark>' in final
        and '<mark class="qa-span">في الأردن</mark>' in sources
    )


def test_translate_replaces_the_shown_turn_and_rerenders_its_sources(fast_seeded, tmp_path):
    """The Sources panel's control: a status line, then each cited sentence's translation (or why there
    is none) under its passage; the translated answer replaces the turn (a new Turn, a new list)."""
    fast_seeded.settings = fast_seeded.settings.model_copy(
        update={"translations_path": tmp_path / "translations.sqlite", "short_answer": "off"}
    )
    handlers = app.Handlers(fast_seeded, fast_seeded.settings)
    turns: list[Turn] = []
    for question in ["Who did Lavrov negotiate with in Moscow?", "What is this article about?"]:
        *_, (_, turns, _, _, shown, button) = handlers.respond(question, turns, "extractive", 4, "en")
    first, last = turns
    assert last.answer.mode == "overview" and len(last.answer.citations) == 3 and shown == last.id
    assert (
        button["visible"] and button["value"] == "Translate cited sentences"
    )  # Arabic quotes, English answer
    pending = render.untranslated(last.answer)
    fakes.ScriptedChat.script = [f"In English: the Kremlin denied it ({i})." for i in range(len(pending))]
    try:
        updates = list(handlers.translate(turns, None))  # nothing clicked: the last answered turn
    finally:
        fakes.ScriptedChat.script = []
    (working, held, busy), (sources, translated, done) = updates
    assert held == gr.skip() and f"Translating {len(pending)} cited sentence(s)" in working
    assert not busy["interactive"]
    assert translated.id == last.id and translated.question == last.question
    assert sources == render.sources_html(translated) and not done["visible"]
    for c in translated.answer.citations:  # the planted reply passes the real check or says why not
        t = c.translation
        assert t is not None and t.lang == "en"
        if t.text is not None:
            assert t.verified and t.text.startswith("In English: the Kremlin denied it") and t.text in sources
        elif t.rough is not None:  # refused word by word: shown word-marked, never as checked
            assert not t.verified and t.note and "Rough machine translation, not checked" in sources
        else:
            assert not t.verified and t.note and f'No translation shown: <bdi dir="ltr">{t.note}' in sources

    kept = handlers.keep_translation(turns, translated)
    assert (
        kept is not turns and kept == [first, translated] and turns == [first, last]
    )  # replaced, not mutated
    assert handlers.keep_translation([first], translated) == gr.skip()  # its conversation was cleared
    select = gr.SelectData(None, {"index": 3, "value": None})
    assert handlers.show_sources(kept, select)[0] == sources
    _, js = handlers.exports(kept)
    data = json.loads(Path(js["value"]).read_text(encoding="utf-8"))
    assert all("translation" in c for c in data["turns"][1]["answer"]["citations"])

    # Asking again is instant (kept in SQLite), and the first turn is found by its id.
    again = list(handlers.translate(kept, first.id))
    redone = again[-1][1].answer
    assert again[-1][1].id == first.id and all(c.translation for c in (*redone.citations, *redone.closest))


def test_translate_failure_is_a_one_sentence_warning(fast_seeded, monkeypatch):
    from qa.errors import LLMError

    fast_seeded.settings = fast_seeded.settings.model_copy(update={"short_answer": "off"})
    handlers = app.Handlers(fast_seeded, fast_seeded.settings)
    *_, (_, turns, *_) = handlers.respond("What did the Kremlin deny?", [], "extractive", 4, "en")

    def unusable(answer, lang=None):
        raise LLMError("The local language model is not fetched; run `python -m qa models fetch`.")

    monkeypatch.setattr(fast_seeded, "translate", unusable)
    with pytest.warns(UserWarning, match="not fetched"):
        *_, (sources, held, button) = handlers.translate(turns, turns[0].id)
    assert sources == render.sources_html(turns[0]) and held is None and button["visible"]


def test_overviews_fill_one_accordion_per_document(fast_seeded):
    from qa import overview

    handlers = app.Handlers(fast_seeded, fast_seeded.settings)
    boxes_and_views = list(handlers.overviews())
    first, final = boxes_and_views[0], boxes_and_views[-1]
    n = app.OVERVIEW_DOCS
    assert len(first) == len(final) == 2 * n
    assert first[0]["visible"] and first[0]["label"] == f"Overview · {SEED.name}"
    assert all(not box["visible"] for box in first[1:n])
    assert "Finding its central sentences" in first[n]
    expected = render.overview_html(overview.central_sentences(fast_seeded.retriever, SEED.name))
    assert final[n] == expected and "<li" in expected
    assert list(handlers.overviews()) == [[*first[:n], expected, *first[n + 1 :]]]  # kept: no wait
    assert app.EXAMPLES[0] == "What is this article about?"
    assert overview.is_about_document(app.SUMMARY_QUESTION)


def test_empty_question_is_skipped_with_a_warning(fast_assistant):
    handlers = app.Handlers(fast_assistant, fast_assistant.settings)
    with pytest.warns(UserWarning, match="Type a question"):
        updates = list(handlers.respond("   ", [], "extractive", 4, "auto"))
    assert len(updates) == 1


@pytest.mark.slow
def test_python_app_py_starts_and_answers(tmp_path):
    """`python app.py` as a user runs it: prints its URL, binds loopback without QA_AUTH, answers."""
    port = free_port()
    env = {
        **os.environ,
        "QA_CHROMA_PATH": str(tmp_path / "chroma"),
        "QA_FEEDBACK_PATH": str(tmp_path / "feedback.jsonl"),
        "QA_PORT": str(port),
        "QA_HOST": "0.0.0.0",  # ignored without QA_AUTH
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("QA_AUTH", None)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 300  # a generous bound against a hung start, not a speed test
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "running at" in line:
                break
        output = "".join(lines)
        assert f"running at http://127.0.0.1:{port}/" in output, output
        assert "QA_HOST=0.0.0.0 ignored" in output
        got = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "What did the Kremlin deny?", api_name="/ask"
        )
        assert got["abstained"] and got["answer"].startswith("Nothing is indexed yet")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _gradio_upload(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file where Gradio caches an upload: its own folder, the uploaded name."""
    folder = tmp_path / "gradio-cache" / f"{len(list(tmp_path.glob('gradio-cache/*')))}"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_uploads_keep_their_name_and_never_linger(fast_assistant, tmp_path):
    handlers = app.Handlers(fast_assistant, fast_assistant.settings)
    quiet = lambda *args, **kwargs: None  # noqa: E731 (stands in for Gradio's progress tracker)
    first = _gradio_upload(tmp_path, "report.txt", "تفتح الحديقة في الثامنة.".encode())
    status = handlers.ingest_files([str(first)], quiet)[2]
    assert "Added: report.txt" in status
    changed = _gradio_upload(tmp_path, "report.txt", "تفتح الحديقة في العاشرة.".encode())
    status = handlers.ingest_files([str(changed)], quiet)[2]
    assert "Replaced: report.txt" in status  # the same name is the same document
    again = _gradio_upload(tmp_path, "copy.txt", "تفتح الحديقة في العاشرة.".encode())
    assert (
        "Same text as an indexed document, skipped: copy.txt" in handlers.ingest_files([str(again)], quiet)[2]
    )
    refused = _gradio_upload(tmp_path, "blob.txt", b"\x00\x01binary")
    with pytest.warns(UserWarning, match="binary"):
        handlers.ingest_files([str(refused)], quiet)
    # nothing stays behind: Gradio's cached copies (and their folders) and our staged copies
    assert list((tmp_path / "gradio-cache").iterdir()) == []
    assert not (fast_assistant.settings.chroma_path.parent / "uploads").exists()
    assert [d.id for d in fast_assistant.documents()] == ["report.txt"]
    # `qa docs` names no staged path that no longer exists (a new user went looking for it)
    (doc,) = fast_assistant.documents()
    assert fast_assistant.source_label(doc) == "uploaded through the page (the file is not kept)"


def test_oversized_uploads_are_refused_before_they_are_saved(fast_assistant, tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    settings = fast_assistant.settings.model_copy(update={"port": free_port(), "max_file_mb": 1})
    demo, url = app.launch(fast_assistant, settings, block=False)
    try:
        upload = url.rstrip("/") + "/gradio_api/upload"
        big = httpx.post(upload, files={"files": ("big.txt", b"x" * 2 * 2**20, "text/plain")}, timeout=60)
        assert big.status_code == 413
        assert not [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]  # never written
        small = httpx.post(upload, files={"files": ("small.txt", b"x" * 1000, "text/plain")}, timeout=60)
        assert small.status_code == 200 and small.json()[0].endswith("small.txt")
    finally:
        demo.close()


def test_handlers_save_list_reopen_rename_and_delete_conversations(fast_seeded):
    """Each answer saves the conversation; the list is per user; reopening brings back the turns and
    the last turn's sources; rename and delete act on the open conversation."""
    handlers = app.Handlers(fast_seeded, fast_seeded.settings)
    ana, ben = gr.Request(username="ana"), gr.Request(username="ben")
    question = "أين غرفة العمليات المشتركة الروسية الأميركية؟"
    *_, (_, turns, *_) = handlers.respond(question, [], "extractive", 4, "auto")
    cid, listed, name = handlers.save_conversation(turns, None, ana)
    assert name == question and listed["value"] == cid and len(listed["choices"]) == 1
    label, value = listed["choices"][0]
    assert value == cid and label.startswith(f"\u2068{question}\u2069 · 1 question · ")
    assert handlers.saved_list(ben)["choices"] == []  # another user's list is their own

    *_, (_, turns, *_) = handlers.respond("What did they agree to fight?", turns, "extractive", 4, "auto")
    assert handlers.save_conversation(turns, cid, ana)[0] == cid  # the same conversation, now 2 turns
    chat, reopened, shown_sources, shown, _, opened, title = handlers.open_conversation(cid, ana)
    assert opened == cid and title == question and shown == reopened[-1].id
    assert [t.answer.to_dict()["citations"] for t in reopened] == [
        t.answer.to_dict()["citations"] for t in turns
    ]
    assert chat == render.chat_messages(turns) and shown_sources == render.sources_html(turns[-1])
    assert handlers.open_conversation(cid, ben) == (gr.skip(),) * 7  # not ben's: a warning, nothing shown

    renamed = handlers.rename_conversation(cid, "  Amman room ", ana)
    assert renamed["choices"][0][0].startswith("\u2068Amman room\u2069 · 2 questions")
    cleared = handlers.delete_conversation(cid, ana)
    assert cleared[:2] == ([], []) and cleared[5] is None and cleared[6]["choices"] == []
    assert handlers.conversations.list(owner="ana") == []
