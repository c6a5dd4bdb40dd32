"""The HTTP API on the running server (uvicorn on a loopback port): real clients, raw HTTP.

The official `openai` package asks a question and a follow-up, streaming and not, over the real
embedder and Chroma, and its citations are exact spans of the seed article; a client with a wrong
key is refused. `curl` drives the REST endpoints (an upload, a bad file, a removal). Raw HTTP shows
that with login on every path (the API, the OpenAPI page, and Gradio's own routes) refuses a call
without a session or key, and that repeated failures from one client are refused outright for a
while. The access plumbing runs on the fast lane (hash embedder); the answers on the full one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from pathlib import Path

import httpx
import openai
import pytest

from qa.config import Settings
from tests.conftest import SEED, serve_seed_app
from web import api

SEED_TEXT = SEED.read_text(encoding="utf-8")
KEY, OTHER_KEY = "test-key-1", "test-key-2"
USER, PASSWORD = "reader", "s3cret-pass"
AUTH = {"auth": f"{USER}:{PASSWORD}", "api_keys": f"{KEY},{OTHER_KEY}", "auth_failure_limit": "4/minute"}
FAST = {"embedding_model": "hash", "second_embedding_model": "hash2", "llm_backend": "scripted"}
# Every kind of path the server has: ours, the OpenAPI page, and Gradio's own (config, API info, the
# queue, uploads, files, heartbeat, its run history).
GUARDED = [
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/ask"),
    ("GET", "/api/documents"),
    ("DELETE", "/api/documents/000_30343400e31c82a3.txt"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/config"),
    ("GET", "/gradio_api/info"),
    ("POST", "/gradio_api/queue/join"),
    ("GET", "/gradio_api/queue/data?session_hash=x"),
    ("POST", "/gradio_api/upload"),
    ("GET", "/gradio_api/file=/etc/passwd"),
    ("GET", "/gradio_api/heartbeat/x"),
    ("POST", "/gradio_api/call/ask"),
    ("GET", "/gradio_api/runs"),
    ("POST", "/gradio_api/reset"),
]
ARABIC_Q = "أين غرفة العمليات المشتركة الروسية الأميركية؟"  # cited even with the hash embedder


def curl(*args: str) -> tuple[int, dict | list]:
    """Run curl; (HTTP status, the JSON body)."""
    out = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, check=True
    ).stdout
    body, status = out.rsplit("\n", 1)
    return int(status), json.loads(body)


def comparable(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "timings_ms"}


# ---------------------------------------------------------------------------------------------
# Fast lane: access, errors and the REST endpoints on a served index of hash vectors


@pytest.fixture(scope="module")
def fast_served(tmp_path_factory):
    # A high failure limit: every refused call below counts, and this server must keep answering 401.
    limits = {**AUTH, "auth_failure_limit": "1000/minute"}
    with serve_seed_app(tmp_path_factory.mktemp("api-fast"), None, **FAST, **limits) as served:
        yield served


def test_every_path_refuses_a_call_without_a_session_or_key(fast_served):
    _, url = fast_served
    base = url.rstrip("/")
    page = httpx.get(url)  # the login page itself, and nothing else
    assert page.status_code == 200 and '"auth_required":true' in page.text.replace(" ", "")
    for method, path in GUARDED:
        r = httpx.request(method, base + path)
        assert r.status_code == 401, (path, r.status_code, r.text[:200])
        assert set(r.json()["error"]) == {"message", "type", "code"}
        wrong = httpx.request(method, base + path, headers={"Authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401, path


def test_keys_sessions_and_the_failure_limit(tmp_path_factory, caplog):
    """A fresh server (its own failure counts): a key opens the API, a page sign-in opens Gradio's
    routes but not the API; four failures in a minute, and the fifth call is refused even when right."""
    caplog.set_level(logging.INFO, logger="qa.api")
    with serve_seed_app(tmp_path_factory.mktemp("api-limit"), None, **FAST, **AUTH) as (_, url):
        base = url.rstrip("/")
        good = {"Authorization": f"Bearer {KEY}"}
        assert httpx.get(base + "/v1/models", headers=good).json()["data"][0]["id"] == "documents"
        assert httpx.get(base + "/docs", headers=good).status_code == 200

        with httpx.Client(base_url=base) as browser:
            assert browser.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
            assert browser.get("/config").status_code == 200  # Gradio's own route, signed in
            assert browser.get("/gradio_api/info").status_code == 200
            assert browser.get("/docs").status_code == 200  # the OpenAPI page, for a signed-in reader
            assert browser.get("/api/documents").status_code == 401  # the API itself wants a key: failure 1

        failures = [
            httpx.post(base + "/login", data={"username": USER, "password": "wrong"}).status_code,
            httpx.get(base + "/v1/models", headers={"Authorization": "Bearer nope"}).status_code,
            httpx.get(base + "/config").status_code,
        ]
        assert failures == [400, 401, 401]  # failures 2 to 4
        refused = httpx.get(base + "/v1/models", headers=good)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "Too many failed sign-ins" in refused.json()["error"]["message"]
        assert httpx.post(base + "/login", data={"username": USER, "password": PASSWORD}).status_code == 429
    lines = [r for r in caplog.records if r.name == "qa.api"]
    assert any("failed sign-in" in r.getMessage() for r in lines)
    assert all(r.exc_info is None for r in lines)  # one line each, no traceback


def test_keys_without_login_are_enforced(tmp_path_factory, capsys):
    """Keys set, no page login (the server behind a reverse proxy on 127.0.0.1): the official `openai`
    client with a wrong key is refused on /v1, curl without one on /api, a right key is served, the
    page stays open, and refused keys lock the client out like failed sign-ins."""
    keyed = {"api_keys": f"{KEY},{OTHER_KEY}", "auth_failure_limit": "4/minute"}
    with serve_seed_app(tmp_path_factory.mktemp("api-keys-only"), None, **FAST, **keyed) as (_, url):
        base = url.rstrip("/")
        assert "login off; the API needs a key" in capsys.readouterr().out
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base + "/v1", api_key="wrong-key").models.list()
        right = openai.OpenAI(base_url=base + "/v1", api_key=KEY)
        assert [m.id for m in right.models.list().data] == ["documents"]
        assert httpx.get(base + "/api/documents").status_code == 401  # no key at all
        assert httpx.get(base + "//api//documents").status_code == 401  # nor with doubled slashes
        assert httpx.get(url).status_code == 200  # the page: no login configured
        assert fail(base, 1) == [401]  # failure 4 (the wrong client, no key, doubled slashes: 1 to 3)
        refused = httpx.get(base + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_neither_keys_nor_login_leaves_the_api_open_to_local_clients(tmp_path_factory, capsys):
    with serve_seed_app(tmp_path_factory.mktemp("api-open"), None, **FAST) as (_, url):
        assert "the API is open to local clients" in capsys.readouterr().out
        assert openai.OpenAI(base_url=url + "v1", api_key="anything").models.list().data[0].id == "documents"
        assert httpx.get(url + "api/documents").status_code == 200


def fail(base: str, times: int, **headers: str) -> list[int]:
    """`times` calls with a wrong key (each a counted failure); their statuses."""
    wrong = {"Authorization": "Bearer nope", **headers}
    return [httpx.get(base + "/v1/models", headers=wrong).status_code for _ in range(times)]


def test_a_forwarded_header_does_not_escape_the_lockout(tmp_path_factory, caplog):
    """No trusted proxy (the default): X-Forwarded-For is ignored, so a locked-out 127.0.0.1 stays
    locked out whatever address it claims, and its failures are not counted under that address."""
    caplog.set_level(logging.INFO, logger="qa.api")
    with serve_seed_app(tmp_path_factory.mktemp("api-noproxy"), None, **FAST, **AUTH) as (_, url):
        base = url.rstrip("/")
        good = {"Authorization": f"Bearer {KEY}"}
        assert fail(base, 4, **{"X-Forwarded-For": "10.1.1.1"}) == [401] * 4  # counted under 127.0.0.1
        for claimed in ("10.9.9.9", "10.9.9.9, 10.8.8.8", "127.0.0.2"):
            r = httpx.get(base + "/v1/models", headers={**good, "X-Forwarded-For": claimed})
            assert r.status_code == 429, (claimed, r.status_code)
        assert httpx.get(base + "/v1/models", headers=good).status_code == 429
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused and all("from 127.0.0.1" in m for m in refused), refused


def test_a_named_proxy_counts_each_forwarded_client(tmp_path_factory, caplog):
    """127.0.0.1 named in QA_TRUSTED_PROXIES: failures forwarded for 10.9.9.9 lock out 10.9.9.9 alone;
    10.8.8.8 and the proxy's own calls still get through; a chain counts its last untrusted hop."""
    caplog.set_level(logging.INFO, logger="qa.api")
    overrides = {**FAST, **AUTH, "trusted_proxies": "127.0.0.1"}
    with serve_seed_app(tmp_path_factory.mktemp("api-proxy"), None, **overrides) as (_, url):
        base = url.rstrip("/")
        good = {"Authorization": f"Bearer {KEY}"}

        def models(forwarded: str | None) -> int:
            headers = {**good, **({"X-Forwarded-For": forwarded} if forwarded else {})}
            return httpx.get(base + "/v1/models", headers=headers).status_code

        # The client spoofs 10.8.8.8 in its own header; the proxy appends the address it saw.
        assert fail(base, 4, **{"X-Forwarded-For": "10.8.8.8, 10.9.9.9"}) == [401] * 4
        assert models("10.9.9.9") == 429  # locked out
        assert models("10.8.8.8") == 200  # another client behind the proxy
        assert models(None) == 200  # the proxy itself
        assert fail(base, 1, **{"X-Forwarded-For": "10.8.8.8"}) == [401]  # 10.8.8.8's first failure
        assert models("10.8.8.8") == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "qa.api"]
    assert sum("from 10.9.9.9" in m for m in messages) == 5  # four failures and the refusal
    assert sum("from 10.8.8.8" in m for m in messages) == 1


def test_rest_endpoints_with_curl_upload_bad_file_and_remove(fast_served, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="qa.api")
    _, url = fast_served
    auth = ["-H", f"Authorization: Bearer {KEY}"]
    status, docs = curl(*auth, url + "api/documents")
    assert status == 200 and [d["id"] for d in docs] == [SEED.name]

    status, asked = curl(
        *auth,
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"question": ARABIC_Q}),
        url + "api/ask",
    )
    assert status == 200 and set(asked) >= {"question", "answer", "citations", "short_answer", "timings_ms"}
    c = asked["citations"][0]
    assert SEED_TEXT[c["start"] : c["end"]] == c["quote"]

    note = tmp_path / "note.md"
    note.write_text("# Notes\n\nThe meeting in Amman was planned for Tuesday [1].\n", encoding="utf-8")
    status, added = curl(*auth, "-F", f"files=@{note}", url + "api/documents")
    assert status == 200 and added["status"] == "Added: note.md."
    assert sorted(d["id"] for d in added["documents"]) == sorted([SEED.name, "note.md"])

    bad = tmp_path / "scan.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not a PDF at all")
    status, refused = curl(*auth, "-F", f"files=@{bad}", url + "api/documents")
    message = refused["error"]["message"]
    assert status == 400 and refused["error"]["type"] == "invalid_request_error"
    assert "scan.pdf" in message and message.count(". ") == 0 and message.endswith(".")  # one sentence
    status, after = curl(*auth, url + "api/documents")
    assert sorted(d["id"] for d in after) == sorted([SEED.name, "note.md"])  # the index is unchanged
    assert any("scan.pdf" in r.getMessage() and r.exc_info is None for r in caplog.records)

    legacy = tmp_path / "cp1256.txt"  # Arabic in the old Windows code page
    legacy.write_bytes(("عقد الاجتماع في عمّان يوم الثلاثاء. " * 3).encode("windows-1256"))
    status, refused = curl(*auth, "-F", f"files=@{legacy}", url + "api/documents")
    assert status == 400 and "encoding=windows-1256 in the API" in refused["error"]["message"]
    status, added = curl(
        *auth, "-F", f"files=@{legacy}", "-F", "encoding=windows-1256", url + "api/documents"
    )
    assert status == 200 and added["status"] == "Added: cp1256.txt."
    status, removed = curl(*auth, "-X", "DELETE", url + "api/documents/cp1256.txt")
    assert status == 200

    status, removed = curl(*auth, "-X", "DELETE", url + "api/documents/note.md")
    assert status == 200 and [d["id"] for d in removed["documents"]] == [SEED.name]
    status, missing = curl(*auth, "-X", "DELETE", url + "api/documents/note.md")
    assert status == 404 and missing["error"]["message"] == "note.md is not indexed."


def test_openai_errors_are_one_sentence_in_openais_shape(fast_served):
    _, url = fast_served
    client = openai.OpenAI(base_url=url + "v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Who?"}])
    assert (
        unknown.value.body["code"] == "model_not_found" and "GET /v1/models" in unknown.value.body["message"]
    )
    for blank in ("", " \u200f "):  # empty and invisible-only: the sentence every edge gives
        with pytest.raises(openai.BadRequestError) as empty:
            client.chat.completions.create(model="documents", messages=[{"role": "user", "content": blank}])
        assert empty.value.body["type"] == "invalid_request_error"
        assert empty.value.body["message"].startswith("The question is empty")
    with pytest.raises(openai.BadRequestError) as last:
        client.chat.completions.create(model="documents", messages=[{"role": "assistant", "content": "Hi"}])
    assert last.value.body["message"] == "The last message must be the user's question."
    as_json = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    for path in ("v1/chat/completions", "api/ask"):
        raw = httpx.post(url + path, content=b"not json {", headers=as_json)
        assert (
            raw.status_code == 400 and raw.json()["error"]["message"] == "The request body is not valid JSON."
        )
        bare = httpx.post(url + path, content=b"{", headers={"Authorization": f"Bearer {KEY}"})
        assert bare.status_code == 400 and bare.json()["error"]["message"].startswith(
            "The request body must be"
        )


def test_reply_text_and_history_round_trip(fast_seeded):
    answer = fast_seeded.ask(ARABIC_Q)
    text = api.reply_text(answer)
    assert text.startswith(answer.answer) and "\n\nSources:\n1. 000_30343400e31c82a3.txt, paragraph" in text
    messages = [
        api.ChatMessage(role="system", content="Be brief."),
        api.ChatMessage(role="user", content=[{"type": "text", "text": ARABIC_Q}]),
        api.ChatMessage(role="assistant", content=text),
    ]
    assert api.history_of(messages) == [(ARABIC_Q, answer.answer)]  # as the page keeps it


def test_keys_file_and_settings(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team\nalpha\n\nbeta\n", encoding="utf-8")
    assert api.parse_keys("gamma, ,delta", keys) == {"alpha", "beta", "gamma", "delta"}
    settings = Settings(_env_file=None, api_keys="a,b", api_keys_file=keys)
    assert api.parse_keys(settings.api_keys, settings.api_keys_file) == {"a", "b", "alpha", "beta"}


def test_trusted_proxies_setting(monkeypatch):
    assert Settings(_env_file=None).trusted_proxies == ""  # nobody's X-Forwarded-For is trusted
    monkeypatch.setenv("QA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,,::1")
    assert api.parse_proxies(Settings(_env_file=None).trusted_proxies) == ("127.0.0.1", "10.0.0.0/8", "::1")
    assert api.parse_proxies("") == ()
    for wrong in ("proxy.local", "10.0.0.1/8"):  # uvicorn would take either for a name no peer has
        with pytest.raises(api.InputError, match=rf"QA_TRUSTED_PROXIES: '{re.escape(wrong)}' is not an IP"):
            api.parse_proxies(f"127.0.0.1,{wrong}")


# ---------------------------------------------------------------------------------------------
# Full lane: the real embedder and Chroma, the official OpenAI client


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    with serve_seed_app(tmp_path_factory.mktemp("api-real"), embedder, **AUTH) as served:
        yield served


def check_citations(qa: dict) -> None:
    assert qa["citations"], qa["answer"]
    for c in qa["citations"]:
        assert c["doc"] == SEED.name and SEED_TEXT[c["start"] : c["end"]] == c["quote"]


def test_openai_client_question_and_follow_up_streaming_and_not(served):
    assistant, url = served
    client = openai.OpenAI(base_url=url + "v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["documents"]
    first_q, follow_q = "Who did Lavrov negotiate with in Moscow?", "What did they agree to fight?"
    messages = [{"role": "user", "content": first_q}]

    done = client.chat.completions.create(model="documents", messages=messages)
    first = done.choices[0].message
    qa = first.model_extra["qa"]
    check_citations(qa)
    expected = assistant.ask(first_q)
    assert comparable(qa) == comparable(expected.to_dict())
    assert first.content == api.reply_text(expected) and "كيري" in first.content  # Kerry
    assert first.content.count("\n1. ") == 1 and f"«{qa['citations'][0]['quote']}»" in first.content

    # The follow-up, streamed: the client sends the conversation back, as any chat client does.
    messages += [{"role": "assistant", "content": first.content}, {"role": "user", "content": follow_q}]
    stream = client.chat.completions.create(model="documents", messages=messages, stream=True)
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    follow = chunks[-1].choices[0].model_extra["qa"]
    check_citations(follow)
    expected = assistant.ask(follow_q, history=[(first_q, qa["answer"])])  # as the page passes it
    assert comparable(follow) == comparable(expected.to_dict()) and content == api.reply_text(expected)

    # The same follow-up not streamed gives the same answer.
    again = client.chat.completions.create(model="documents", messages=messages).choices[0].message
    assert comparable(again.model_extra["qa"]) == comparable(follow) and again.content == content

    intruder = openai.OpenAI(base_url=url + "v1", api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        intruder.chat.completions.create(model="documents", messages=messages[:1])
    assert refused.value.status_code == 401 and "API key" in refused.value.body["message"]


def test_rest_ask_is_the_cli_json(served, real_env):
    """`POST /api/ask` returns what `qa ask --json` prints for the same question over the same index."""
    assistant, url = served
    question = "ماذا نفى الكرملين؟"
    status, body = curl(
        "-H",
        f"Authorization: Bearer {KEY}",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"question": question}),
        url + "api/ask",
    )
    assert status == 200
    check_citations(body)
    env = {**real_env, "QA_CHROMA_PATH": str(Path(assistant.settings.chroma_path)), "QA_SHORT_ANSWER": "off"}
    out = subprocess.run(
        [".venv/bin/python", "-m", "qa", "ask", question, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    ).stdout
    assert comparable(json.loads(out)) == comparable(body)


@pytest.fixture(scope="module")
def served_reading(tmp_path_factory, embedder):
    """The server with the short answer on: the local model reads every question."""
    settings = {"short_answer": "on", "llm_timeout_s": 600}
    with serve_seed_app(tmp_path_factory.mktemp("api-reader"), embedder, **settings) as served:
        yield served


def test_streams_send_the_quote_before_the_reading(served_reading):
    """Streamed, the quote comes first (a `qa_draft` chunk without content; a `draft` line) while the
    local reader reads; the final answer, with its short answer, is the one the unstreamed call gives."""
    assistant, url = served_reading
    question = "Who did Lavrov negotiate with in Moscow?"
    headers = {}
    body = {"model": "documents", "messages": [{"role": "user", "content": question}], "stream": True}
    events = []
    with httpx.stream("POST", url + "v1/chat/completions", json=body, headers=headers, timeout=600) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                events.append(json.loads(line.removeprefix("data: "))["choices"][0])
    drafts = [i for i, e in enumerate(events) if "qa_draft" in e]
    content = [i for i, e in enumerate(events) if e["delta"].get("content")]
    assert drafts and content and drafts[0] < content[0]
    draft, final = events[drafts[0]]["qa_draft"], events[-1]["qa"]
    assert not events[drafts[0]]["delta"].get("content")
    check_citations(draft)
    assert draft["short_answer"] is None and final["short_answer"] is not None
    assert comparable(final) == comparable(assistant.ask(question).to_dict())

    payload = {"question": question, "stream": True}
    with httpx.stream("POST", url + "api/ask", json=payload, headers=headers, timeout=600) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert list(lines[0]) == ["draft"] and list(lines[-1]) == ["answer"]
    assert lines[0]["draft"]["citations"] == draft["citations"]
    assert comparable(lines[-1]["answer"]) == comparable(final)
