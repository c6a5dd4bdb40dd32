"""The HTTP API beside the web page: OpenAI-compatible chat completions and a small REST API.

`create_server()` builds the FastAPI application `web.app.launch` serves with the Gradio page mounted
at `/`: one server, one port.

- `GET /v1/models`: the collections (a model name selects a collection); `POST /v1/chat/completions`
  (streaming or not): the last user message is the question, the earlier ones the conversation
  (follow-ups resolved as in the page, `Assistant.retrieve`). The reply's content is the answer with
  its `[n]` markers, then its sources as a numbered list (document, paragraph, the quote); the
  structured answer (the `qa ask --json` object: citations with exact offsets, the short answer)
  rides along as `"qa"` on the message (and on the last streamed chunk), which OpenAI clients ignore.
  A stream sends the content once the answer is final: a generated answer that fails its checks is
  replaced before anyone sees it, and a stream cannot take text back. What can be shown before
  (the quote, at once, while the reader reads) comes first as `"qa_draft"` on a chunk of its own,
  with no content: the `qa` object of an answer that is not yet one, which the final one replaces.
- `POST /api/ask` (the `qa ask --json` object; with `"stream": true`, newline-delimited JSON: a
  `{"draft": …}` line for the quote at once, then `{"answer": …}`, or `{"error": …}`), `GET /api/documents`, `POST /api/documents` (upload,
  the page's checks and messages: `web.uploads.index_uploads`), `DELETE /api/documents/{id}`;
  the OpenAPI page at `/docs`.
- Errors are OpenAI's shape, `{"error": {"message", "type", "code"}}`, with one sentence; a user's
  bad input is logged as one line, never a traceback.
- Access (`Access`): whenever API keys are set (QA_API_KEYS / QA_API_KEYS_FILE), `/v1` and `/api`
  need `Authorization: Bearer <key>`, with or without a page login, as vLLM's and llama.cpp's
  servers enforce `--api-key` whenever it is given. Without login (no QA_AUTH) the server binds
  127.0.0.1 only and the page is open; without keys too, so is the API (to local clients). With
  login, every path but the login page and its static files needs a signed-in page session or a
  key (the OpenAPI page at /docs opens for either). Failed sign-ins and refused keys count per client (the `limits` library's
  moving window, QA_AUTH_FAILURE_LIMIT): past the limit the client gets 429 until the window moves.
  The client is the socket's peer; `X-Forwarded-For` names it instead only when that peer is one of
  the proxies in QA_TRUSTED_PROXIES (uvicorn's `ProxyHeadersMiddleware`, added by `create_server()`
  itself, so the tests' server and the launched one are the same; uvicorn's own is off).

Leaves out: the page itself (web/app.py), rendering (web/render.py), and any state of its own beyond
the assistants per collection (conversations sent by a client are the client's).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qa.answer import Answer, check_question
from qa.assistant import Assistant
from qa.errors import InputError, QAError
from qa.stream import Draft
from web.uploads import index_uploads

log = logging.getLogger("qa.api")

SHORT_LABEL, NOTE_LABEL = "Short answer: ", "Note: "
SOURCES_HEADING = "Sources:"
CLOSEST_HEADING = "Closest passages (not an answer):"
# Paths anyone may reach when login is on: Gradio's login page and what it loads to show itself.
PUBLIC_PATHS = {
    "/",
    "/login",
    "/login/",
    "/logout",
    "/favicon.ico",
    "/theme.css",
    "/robots.txt",
    "/manifest.json",
}
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
KEY_PREFIXES = ("/v1/", "/api/")  # the API itself: a key, not a page session
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


# ---------------------------------------------------------------------------------------------
# Requests and replies


class ChatMessage(BaseModel):
    """One OpenAI chat message; `content` is text or a list of parts (only the text parts count)."""

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat-completion request this server reads; the others are ignored."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


class AskRequest(BaseModel):
    """`POST /api/ask`: the options of `qa ask`; `history` is [[question, answer], …], oldest first."""

    question: str
    mode: str | None = None
    k: int | None = Field(None, ge=1, le=50)
    lang: Literal["auto", "ar", "en"] | None = None
    history: list[tuple[str, str]] = []
    stream: bool = False


def error_body(message: str, *, status: int, code: str | None = None) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "code"}}."""
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "code": code}}


def error_response(message: str, *, status: int, code: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(message, status=status, code=code), status_code=status, headers=headers)


def server_failed(exc: Exception) -> str:
    """The one sentence for a bug (its details go to the log, not to the client)."""
    return f"The server failed ({type(exc).__name__}); the details are in its log."


def failure_body(exc: Exception, *, where: str) -> dict:
    """The error object for a failure once a stream has begun (it travels as an event, not a
    status): a `QAError` is the user's one sentence (400, one log line), anything else a bug
    (500, logged with its traceback)."""
    if isinstance(exc, QAError):
        log.info("%s: %s", where, exc)
        return error_body(str(exc), status=400)
    log.exception("%s failed", where)
    return error_body(server_failed(exc), status=500)


def reply_text(answer: Answer) -> str:
    """The chat reply: the answer with its `[n]` markers; then its short answer and note, one line
    each; then the sources as a numbered list (document, paragraph, «quote»), or the closest
    passages when the documents do not answer.

    Example: "According to the article [1]: «…»\n\nSources:\n1. seed.txt, paragraph 1: «…»"
    """
    parts, extra = [answer.answer], []
    short = answer.short_answer
    if short is not None:
        extra.append(f"{SHORT_LABEL}{short.text} [{short.n}] ({short.status()})")
    if answer.note:
        extra.append(f"{NOTE_LABEL}{answer.note}")
    if extra:
        parts.append("\n".join(extra))
    shown = answer.citations or answer.closest
    if shown:
        lines = [SOURCES_HEADING if answer.citations else CLOSEST_HEADING]
        for c in shown:
            page = f", p. {c.page}" if c.page else ""
            scan = f", read by OCR ({c.recognition.confidence:.0%} sure)" if c.recognition else ""
            lines.append(f"{c.n}. {c.doc}{page}, paragraph {c.paragraph + 1}{scan}: «{c.quote}»")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def history_of(messages: list[ChatMessage]) -> list[tuple[str, str]]:
    """The conversation before the last message: (question, answer text) pairs, as the page keeps them.

    An assistant message from this server is cut before its short answer, note and sources (the
    page's history holds the answer alone); system messages are ignored.
    """
    pairs, question = [], None
    for m in messages:
        if m.role == "user":
            question = m.text()
        elif m.role == "assistant" and question is not None:
            text = m.text()
            for label in (SHORT_LABEL, NOTE_LABEL, f"{SOURCES_HEADING}\n", f"{CLOSEST_HEADING}\n"):
                text = text.split(f"\n\n{label}", 1)[0]
            pairs.append((question, text))
            question = None
    return pairs


# ---------------------------------------------------------------------------------------------
# Access


def parse_keys(keys: str | None, keys_file: Path | None) -> set[str]:
    """API keys from QA_API_KEYS (comma-separated) and QA_API_KEYS_FILE (one a line, # comments).

    Raises `InputError` when the file cannot be read.
    """
    found = {k.strip() for k in (keys or "").split(",") if k.strip()}
    if keys_file:
        try:
            lines = Path(keys_file).expanduser().read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"QA_API_KEYS_FILE {keys_file} cannot be read ({exc.strerror}).") from None
        found |= {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    return found


def parse_proxies(text: str) -> tuple[str, ...]:
    """The trusted proxies of QA_TRUSTED_PROXIES: comma-separated IP addresses or networks ("10.0.0.0/8").

    Raises `InputError` naming the first entry that is neither, parsed as uvicorn parses it (a
    network with host bits set, "10.0.0.1/8", included): uvicorn would take it as a literal host
    name no peer ever has, and trust nothing without saying so.
    """
    proxies = tuple(p.strip() for p in text.split(",") if p.strip())
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy) if "/" in proxy else ipaddress.ip_address(proxy)
        except ValueError:
            raise InputError(
                f"QA_TRUSTED_PROXIES: {proxy!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)."
            ) from None
    return proxies


@dataclass(frozen=True)
class Access:
    """Who may call: `login` off means everyone (the server is on loopback only); otherwise an API key
    from `keys`, or a page session `session_user(request)` knows. `limit` ("5/minute") bounds the
    failures one client may make in a moving window. `trusted_proxies` are the peers whose
    `X-Forwarded-For` names the client (addresses or networks); from any other peer it is ignored."""

    login: bool
    keys: frozenset[str]
    limit: str = "5/minute"
    session_user: Callable[[Request], str | None] = lambda request: None
    trusted_proxies: tuple[str, ...] = ()


def is_api(path: str) -> bool:
    """Whether a request path is the API's (`/v1`, `/api` and below), repeated slashes collapsed."""
    path = re.sub("/{2,}", "/", path)
    return path.startswith(KEY_PREFIXES) or path in {p.rstrip("/") for p in KEY_PREFIXES}


class Guard:
    """The access check every request passes first (a FastAPI middleware), with its failure limiter."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.limit = parse(access.limit)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def key_ok(self, request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(secrets.compare_digest(key, k) for k in self.access.keys)

    async def __call__(self, request: Request, call_next):
        path, client = request.url.path, request.client.host if request.client else "?"
        api = is_api(path)
        if not self.access.login and not (self.access.keys and api):
            return await call_next(request)  # no login: the page is open; the API too unless keyed
        public = self.access.login and (path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES))
        if not self.limiter.test(self.limit, "auth", client):
            reset = self.limiter.get_window_stats(self.limit, "auth", client).reset_time
            wait = max(1, int(reset - time.time()) + 1)
            log.info("refused %s %s from %s: too many failed sign-ins", request.method, path, client)
            return error_response(
                f"Too many failed sign-ins from this address; try again in {wait} s.",
                status=429,
                code="rate_limited",
                headers={"Retry-After": str(wait)},
            )
        if public:
            response = await call_next(request)
            if path.rstrip("/") == "/login" and response.status_code >= 400:
                self.limiter.hit(self.limit, "auth", client)
                log.info("failed sign-in from %s", client)
            return response
        if self.key_ok(request) or (not api and self.access.session_user(request)):
            return await call_next(request)
        self.limiter.hit(self.limit, "auth", client)
        log.info("refused %s %s from %s: not signed in", request.method, path, client)
        if not self.access.keys and api:
            message = "This server has no API keys: set QA_API_KEYS (or QA_API_KEYS_FILE) to use the API."
        elif not self.access.login:
            message = "Send a valid API key as `Authorization: Bearer <key>`."
        else:
            message = "Send a valid API key as `Authorization: Bearer <key>`, or sign in on the page."
        return error_response(message, status=401, code="invalid_api_key")


# ---------------------------------------------------------------------------------------------
# The application


class UnknownModel(InputError):
    """A chat request names a collection that does not exist (OpenAI's `model_not_found`, 404)."""


class Assistants:
    """One assistant per collection, sharing the embedding model of the page's assistant."""

    def __init__(self, base: Assistant) -> None:
        self.base = base  # its collection is QA_COLLECTION
        self._by_name: dict[str, Assistant] = {base.settings.collection: base}

    def names(self) -> list[str]:
        """The collections a client may name: the page's, and the others this Chroma holds."""
        from qa.store import SENTENCES_SUFFIX

        found = [c if isinstance(c, str) else c.name for c in self.base.store.client.list_collections()]
        chunks = [n for n in found if not n.endswith(SENTENCES_SUFFIX)]  # each index's second half
        return sorted({self.base.settings.collection, *chunks})

    def get(self, name: str) -> Assistant:
        """The assistant over collection `name`; `UnknownModel` when there is no such collection."""
        if name not in self._by_name:
            if name not in self.names():
                raise UnknownModel(f"There is no collection named {name!r}; GET /v1/models lists them.")
            other = Assistant(self.base.settings.model_copy(update={"collection": name}))
            other.embedder = self.base.embedder  # cached_property: the loaded model, once per process
            self._by_name[name] = other
        return self._by_name[name]


def create_server(
    assistant: Assistant, *, access: Access, ready: Callable[[], None] = lambda: None
) -> FastAPI:
    """The FastAPI application with the API routes and the access guard (mount the page on it after).

    `ready` blocks until the embedding model is loaded (the page's warm-up), raising its `QAError`.
    """
    server = FastAPI(
        title="Cited answers over Arabic documents",
        description="OpenAI-compatible chat completions with citations, and a REST API.",
        version="1",
    )
    server.middleware("http")(Guard(access))
    if access.trusted_proxies:  # added last, so it runs first: the guard counts the forwarded client
        server.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(access.trusted_proxies))
    assistants = Assistants(assistant)

    @server.exception_handler(QAError)
    async def qa_error(request: Request, exc: QAError):
        log.info("%s %s: %s", request.method, request.url.path, exc)  # a user's input: one line
        if isinstance(exc, UnknownModel):
            return error_response(str(exc), status=404, code="model_not_found")
        return error_response(str(exc), status=400)

    @server.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(str(exc.detail), status=exc.status_code)

    @server.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":  # the body is not JSON at all
            message = "The request body is not valid JSON."
        elif tuple(first.get("loc", ())) == ("body",):  # JSON, or no JSON content type, but not an object
            message = "The request body must be a JSON object (Content-Type: application/json)."
        else:
            where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "the body"
            message = f"The request is invalid: {where}: {first.get('msg', 'invalid value')}."
        log.info("%s %s: %s", request.method, request.url.path, message)
        return error_response(message, status=400, code="invalid_request")

    @server.exception_handler(Exception)
    async def failed(request: Request, exc: Exception):
        log.exception("%s %s failed", request.method, request.url.path)  # a bug: the details go to the log
        return error_response(server_failed(exc), status=500)

    def answer_stream(req: ChatRequest):
        """(checked stream, model) for a chat request; raises `QAError` before anything is sent."""
        if req.messages[-1].role != "user":
            raise InputError("The last message must be the user's question.")
        qa = assistants.get(req.model)
        # empty, invisible or too long: the sentence every edge gives
        check_question(req.messages[-1].text(), max_chars=qa.settings.max_question_chars)
        ready()
        stream = qa.stream(req.messages[-1].text(), history=history_of(req.messages[:-1]))
        return stream

    @server.get("/v1/models", tags=["OpenAI"])
    def models() -> dict:
        """The collections, as OpenAI models: pass one as `model` to ask about its documents."""
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "qa"} for n in assistants.names()
            ],
        }

    @server.post("/v1/chat/completions", tags=["OpenAI"])
    def chat(req: ChatRequest):
        """An answer with citations as an OpenAI chat completion (`stream: true` for server-sent events).

        The content is the answer with `[n]` markers and its numbered sources; `message.qa` (and the
        last chunk's `qa`) is the `qa ask --json` object.
        """
        stream = answer_stream(req)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        head = {"id": cid, "created": created, "model": req.model}
        if not req.stream:
            answer = stream.answer()
            message = {"role": "assistant", "content": reply_text(answer), "qa": answer.to_dict()}
            return {
                **head,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }

        def chunk(delta: dict, finish: str | None = None, **extra) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None, **extra}
            body = {**head, "object": "chat.completion.chunk", "choices": [choice]}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            try:
                for event in stream.events():
                    if isinstance(event, Draft):  # the quote while the reader reads: no content yet
                        yield chunk({}, qa_draft=event.answer.to_dict())
                answer = stream.answer()
            except Exception as exc:
                body = failure_body(exc, where="POST /v1/chat/completions (streamed)")
                yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            else:
                yield chunk({"content": reply_text(answer)})
                yield chunk({}, "stop", qa=answer.to_dict())
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @server.post("/api/ask", tags=["REST"])
    def ask(req: AskRequest):
        """Answer one question: the `qa ask --json` object (`stream`: NDJSON, the draft first)."""
        ready()
        stream = assistant.stream(
            req.question, k=req.k, mode=req.mode, answer_language=req.lang, history=req.history
        )
        if not req.stream:
            return stream.answer().to_dict()

        def lines() -> Iterator[str]:
            try:
                for event in stream.events():
                    if isinstance(event, Draft):
                        yield json.dumps({"draft": event.answer.to_dict()}, ensure_ascii=False) + "\n"
                yield json.dumps({"answer": stream.answer().to_dict()}, ensure_ascii=False) + "\n"
            except Exception as exc:
                body = failure_body(exc, where="POST /api/ask (streamed)")
                yield json.dumps(body, ensure_ascii=False) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @server.get("/api/documents", tags=["REST"])
    def documents() -> list[dict]:
        """The indexed documents: id, source, sha256, chunks, chars, pages."""
        return [vars(d) for d in assistant.documents()]

    @server.post("/api/documents", tags=["REST"])
    def upload(files: list[UploadFile] = File(...), encoding: str | None = Form(None)) -> dict:  # noqa: B008
        """Index uploaded files (.txt .md .html .pdf .docx, images read by OCR), with the page's checks and messages;
        `encoding` (a form field) reads text files in that encoding instead of UTF-8.

        Returns {"status": one sentence, "documents": the index afterwards}.
        """
        folder = Path(tempfile.mkdtemp(prefix="qa-api-upload-"))
        paths = []
        try:
            for f in files:
                name = Path(f.filename or "upload").name
                path = folder / name
                with path.open("wb") as out:
                    shutil.copyfileobj(f.file, out)
                paths.append(path)
            status = index_uploads(assistant, paths, ready=ready, encoding=encoding or None)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return {"status": status, "documents": documents()}

    @server.delete("/api/documents/{doc_id:path}", tags=["REST"])
    def remove(doc_id: str) -> dict:
        """Remove a document by its id (as GET /api/documents lists it)."""
        if not assistant.remove(doc_id):
            return error_response(f"{doc_id} is not indexed.", status=404, code="document_not_found")
        return {"removed": doc_id, "documents": documents()}

    return server
