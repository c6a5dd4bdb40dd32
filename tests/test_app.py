"""The web app without a browser: its API (gradio_client) against `Assistant.ask`, and its formatting.

One app per module, served in a thread on a free loopback port over a seeded tmp Chroma, sharing the
session's embedding model; plus one run of `python app.py` itself as users start it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gradio_client import Client

import app
from qa.errors import InputError
from tests.conftest import free_port, serve_seed_app

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"
XSS_DOC = Path(__file__).parent / "fixtures" / "xss_notice.md"
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


def test_document_text_becomes_inert_html(seeded):
    seeded.ingest([XSS_DOC], progress=False)
    answer = seeded.ask("What did the attacker write into the notice board?")
    assert answer.citations and answer.citations[0].doc == XSS_DOC.name
    turn = {"id": "t1", "question": "<b>q</b>", "answer": app.answer_record(answer), "error": None}
    page = app.answer_html(turn) + app.sources_html(turn) + app.user_html(turn["question"])
    assert not re.search(r"<(script|img|a|b)[\s>]", page)  # every tag in the text arrives escaped
    assert "&lt;script&gt;" in page or "&lt;img" in page
    assert "<mark>" in page and '<span class="qa-ref"' in page


def test_sources_highlight_the_cited_sentence(seeded):
    answer = seeded.ask(QUESTIONS[1])
    html = app.sources_html({"id": "t", "question": QUESTIONS[1], "answer": app.answer_record(answer)})
    marks = re.findall(r"<mark>(.*?)</mark>", html)
    assert marks == [app.esc(c.quote) for c in answer.citations]
    assert html.count('dir="auto"') >= len(answer.citations)


def test_abstained_answer_shows_closest(seeded):
    # A threshold no evidence reaches: the UI's rendering is tested here, not the calibration.
    seeded.settings = seeded.settings.model_copy(
        update={"abstain_threshold": 2.0, "abstain_threshold_ar": 2.0}
    )
    answer = seeded.ask("How old is Sergei Lavrov?")
    assert answer.abstained and answer.closest
    turn = {"id": "t", "question": answer.question, "answer": app.answer_record(answer), "error": None}
    bubble = app.answer_html(turn)
    assert "qa-abstain" in bubble and "does not answer" in bubble and "qa-ref" not in bubble
    assert "Closest passage" in bubble and "qa-src-closest" in app.sources_html(turn)


def test_feedback_and_exports_read_as_a_question_set(seeded):
    turns = []
    for q in ["Who did Lavrov negotiate with in Moscow?", "What did they agree to fight?"]:
        history = [(t["question"], t["answer"]["answer"]) for t in turns]
        turns.append(
            {
                "id": f"t{len(turns)}",
                "question": q,
                "answer": app.answer_record(seeded.ask(q, history=history)),
            }
        )
    record = app.feedback_record(turns, 1, "up")
    assert {
        "id",
        "question",
        "lang",
        "answers",
        "evidence",
        "rating",
        "citations",
        "mode",
        "timestamp",
    } <= set(record)
    assert record["follows"] == "t0" and record["rating"] == "up"
    assert record["evidence"] == [c["quote"] for c in turns[1]["answer"]["citations"]]
    json.dumps(record, ensure_ascii=False)  # one JSONL line

    md = app.conversation_markdown(turns)
    assert "## 1. Who did Lavrov negotiate with in Moscow?" in md
    assert turns[0]["answer"]["citations"][0]["quote"] in md
    data = json.loads(app.conversation_json(turns))
    assert [t["question"] for t in data["turns"]] == [t["question"] for t in turns]
    assert data["turns"][0]["answer"]["citations"][0]["passage"]


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
