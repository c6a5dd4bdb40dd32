"""LLM backends: a LangChain chat model per backend, prompts, and capped, streamed generations.

Backends (`QA_LLM_BACKEND`): `local` runs the verified Qwen2.5-Coder-1.5B GGUF in-process through
`llama_cpp.Llama` behind a thin LangChain `BaseChatModel` (loaded once per process, 2 threads);
`openai` is any OpenAI-compatible server (`ChatOpenAI`, inside `ServerChat`, which asks the server
for token log-probabilities and turns them into the local model's `TokenLogprob` records: no
library does that conversion, and the reader's signals are read from those records); `ollama` is
`ChatOllama`. A backend that is
missing, misconfigured or unreachable raises `LLMError` with one sentence; the stage that called it
(the reader, the generative mode, translation) says what it shows instead.

Every call goes through `stream_text` (or `generate`/`complete`, which drain it): it caps tokens
and seconds (`QA_LLM_TIMEOUT_S`), reports why a generation stopped, and turns any client or server
failure into `LLMError`. Prompts are files in `prompts/` (`load_prompt`, `messages`); evidence goes
into them through `quote`, as inert one-line data, so a document cannot instruct the model.

Leaves out: what is asked (qa.reader, qa.generative, qa.condense, qa.translate) and how a reply is
checked (qa.verify).
"""

from __future__ import annotations

import ctypes
import json
import re
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import lru_cache
from string import Template
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from qa import batching, models, plugins
from qa.config import PROJECT_DIR, Settings
from qa.errors import LLMError, QAError

PROMPTS_DIR = PROJECT_DIR / "prompts"
N_CTX = 2048
# Saved prompt-prefix states kept per process (one per prompt file in use: reader, answer, condense).
# A state holds the KV cache of its tokens: ~28 KB per token for Qwen2.5-1.5B (28 layers x 2 x 256 x 2 B),
# so ~15 MB for the reader's 550-token instructions and examples (`PrefixState`: without the
# 311 MB score matrix llama-cpp-python's own save_state copies each time).
PREFIX_STATES = 8


# Prompts ---------------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def load_prompt(name: str) -> tuple[tuple[str, Template], ...]:
    """The messages of prompts/<name>.txt as (role, template) pairs, in order.

    The file is a `### system` section, then `### user` / `### assistant` sections (worked examples
    come first, the last `### user` is the question); variables are `$name` (string.Template, so
    JSON examples need no escaping). Raises `LLMError` when the file is missing or malformed.
    """
    path = PROMPTS_DIR / f"{name}.txt"
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LLMError(f"The prompt file {path} cannot be read ({exc.strerror}).") from exc
    parts = re.split(r"^### (system|user|assistant)[ \t]*\n", raw, flags=re.M)
    sections = [(parts[i], parts[i + 1].strip()) for i in range(1, len(parts) - 1, 2)]
    roles = [r for r, _ in sections]
    if parts[0].strip() or not roles or roles[0] != "system" or roles[-1] != "user":
        raise LLMError(
            f"The prompt file {path} must start with '### system' and end with a '### user' section."
        )
    return tuple((role, Template(body)) for role, body in sections)


def messages(name: str, **values: str) -> list[BaseMessage]:
    """The chat messages of a prompt with its variables filled in, strictly.

    Raises `LLMError` when a variable the prompt uses is not given, or one given is not used.
    """
    templates = load_prompt(name)
    used = {v for _, t in templates for v in t.get_identifiers()}
    if used != set(values):
        raise LLMError(f"The prompt {name!r} uses {sorted(used)} but was given {sorted(values)}.")
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[role](t.substitute(values)) for role, t in templates]


def quote(text: str) -> str:
    """Evidence as inert data: one line, no angle brackets that could close the <evidence> block."""
    return re.sub(r"\s+", " ", text).replace("<", "‹").replace(">", "›").strip()


# The local backend -----------------------------------------------------------------------------

_LLAMA_LOCK = threading.Lock()  # one llama.cpp context: one generation at a time


@lru_cache(maxsize=1)
def _llama(path: str, n_ctx: int, n_threads: int):
    """Load the GGUF once per process."""
    try:
        from llama_cpp import Llama  # deferred: the compiled library loads only with the local backend
    except ImportError as exc:
        raise LLMError(
            "The local LLM needs llama-cpp-python; install it (`pip install llama-cpp-python`) or set QA_LLM_BACKEND."
        ) from exc
    try:
        # Not memory-mapped: llama.cpp repacks the Q4_K weights into its CPU layout anyway, and a
        # mapped file keeps its 1.1 GB of pages resident beside the repacked copy (measured: 1.86 GB
        # resident mapped, 1.27 GB not, after the same generation).
        return Llama(
            model_path=path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            use_mmap=False,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise LLMError(f"The local LLM at {path} could not be loaded ({exc}).") from exc


def local_llama(settings: Settings):
    """The process-wide llama.cpp model for `settings` (verified by sha256 stamp, then loaded once)."""
    try:
        path = models.verify(models.QWEN_1_5B, settings.models_dir)
    except QAError as exc:
        raise LLMError(str(exc)) from exc
    return _llama(str(path), N_CTX, settings.threads)


@lru_cache(maxsize=1)
def _batcher(llama, slots: int, n_threads: int, lookup: int) -> batching.Batcher:
    return batching.Batcher(llama, slots=slots, n_ctx=N_CTX, n_threads=n_threads, lookup=lookup)


def local_batcher(settings: Settings, llama=None) -> batching.Batcher | None:
    """The process-wide batched decoder of the local model (`QA_LLM_PARALLEL` slots), or None with one
    slot (replies then take turns on the model's own context). `llama`: the loaded model, when the
    caller has it (else `local_llama`). Raises `LLMError` as `local_llama`."""
    if settings.llm_parallel <= 1:
        return None
    return _batcher(
        llama or local_llama(settings), settings.llm_parallel, settings.threads, settings.llm_lookup
    )


def chatml(messages: list[BaseMessage], *, generation_prompt: bool) -> str:
    """Messages in Qwen2.5's chat template (ChatML), as its GGUF's own template renders them.

    Example: chatml([SystemMessage("S")], generation_prompt=False) == "<|im_start|>system\\nS<|im_end|>\\n"
    """
    roles = {"system": "system", "human": "user", "ai": "assistant"}
    text = "".join(f"<|im_start|>{roles.get(m.type, 'user')}\n{m.content}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


class StreamingChatModel(BaseChatModel):
    """A chat model defined by its `_stream`: the whole reply is the streamed chunks joined."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, meta = "", {}
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            text += chunk.message.content
            meta.update(chunk.message.response_metadata)
        return ChatResult(
            generations=[ChatGeneration(message=AIMessage(content=text, response_metadata=meta))]
        )


class LlamaCppChat(StreamingChatModel):
    """A LangChain chat model over an in-process `llama_cpp.Llama` (Qwen's ChatML, greedy decoding).

    Fast and deterministic: every message before the last (instructions, worked examples) is a
    fixed prefix whose evaluated state is saved once per process; each call restores exactly that
    state and evaluates only the rest. So the same messages always give the same reply, whatever
    was asked before (reusing whatever prefix happened to be in the context made replies depend on
    the previous question), and a prompt's instructions are read once, not per question.
    `response_format={"type": "json_object", "schema": ...}` constrains the reply with a grammar.
    """

    llama: Any
    max_tokens: int = 256
    temperature: float = 0.0
    # With a `qa.batching.Batcher`, replies are decoded in its batches (several people at once) and a
    # reply that cannot start in time is dropped (finish "time") after `timeout_s` seconds.
    batcher: Any = None
    timeout_s: float = 60.0

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def _prefix_state(self, prefix: str) -> PrefixState:
        """The model state after evaluating `prefix` (computed once, kept in `_STATES`)."""
        key = (id(self.llama), prefix)
        state = _STATES.get(key)
        if state is None:
            tokens = self.llama.tokenize(prefix.encode("utf-8"), add_bos=False, special=True)
            self.llama.reset()
            self.llama.eval(tokens)
            state = PrefixState.save(self.llama)
            _STATES[key] = state
            while len(_STATES) > PREFIX_STATES:
                _STATES.pop(next(iter(_STATES)))
        return state

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        from llama_cpp import LlamaGrammar  # deferred: the compiled library loads only with the local backend

        prefix = chatml(messages[:-1], generation_prompt=False)
        prompt = prefix + chatml(messages[-1:], generation_prompt=True)
        grammar = None
        response_format = kwargs.get("response_format") or {}
        if response_format.get("schema"):
            grammar = LlamaGrammar.from_json_schema(json.dumps(response_format["schema"]), verbose=False)
        if self.batcher is not None and not stop:
            yield from self._batched(
                prefix, prompt, grammar, bool(kwargs.get("logprobs")), kwargs, run_manager
            )
            return
        trace = _LogprobTrace(self.llama) if kwargs.get("logprobs") else None
        with _LLAMA_LOCK:
            if prefix:
                self._prefix_state(prefix).load(self.llama)
            else:
                self.llama.reset()
            stream = self.llama.create_completion(
                prompt,
                stream=True,
                stop=[*(stop or []), "<|im_end|>", "<|endoftext|>"],
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=self.temperature,
                grammar=grammar,
                logits_processor=[trace] if trace else None,
            )
            try:
                for part in stream:
                    choice = part["choices"][0]
                    delta = choice.get("text") or ""
                    finish = choice.get("finish_reason")
                    meta = {"finish_reason": finish} if finish else {}
                    if finish and trace:
                        meta["token_logprobs"] = tuple(trace.tokens)
                    if delta or finish:
                        chunk = ChatGenerationChunk(
                            message=AIMessageChunk(content=delta, response_metadata=meta)
                        )
                        if run_manager and delta:
                            run_manager.on_llm_new_token(delta, chunk=chunk)
                        yield chunk
            finally:
                stream.close()  # a consumer that stops early (time cap) also stops the generation

    def _batched(
        self, prefix, prompt, grammar, logprobs, kwargs, run_manager
    ) -> Iterator[ChatGenerationChunk]:
        """`_stream` through the batcher: the same tokens, grammar, greedy choice and log-probabilities."""
        tokens = self.llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        head = self.llama.tokenize(prefix.encode("utf-8"), add_bos=True, special=True) if prefix else []
        prefix_len = len(head) if tokens[: len(head)] == head else 0
        steps = self.batcher.generate(
            tokens,
            prefix_len=prefix_len,
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            grammar=(grammar._grammar, grammar._root) if grammar else None,
            logprobs=logprobs,
            timeout_s=self.timeout_s,
        )
        decoder = batching.utf8_pieces()
        records: list[TokenLogprob] = []
        try:
            while True:
                try:
                    step = next(steps)
                except StopIteration as end:
                    finish = end.value
                    break
                if logprobs:
                    records.append(TokenLogprob(step.piece, step.logprob, step.digits))
                delta = decoder.decode(step.piece)
                if delta:
                    chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                    if run_manager:
                        run_manager.on_llm_new_token(delta, chunk=chunk)
                    yield chunk
        finally:
            steps.close()  # a consumer that stops early (time cap) cancels the job
        meta = {"finish_reason": finish}
        if logprobs:
            meta["token_logprobs"] = tuple(records)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta))


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its bytes (UTF-8, possibly part of a character) and its natural-log
    probability under the model before a grammar constrained the choice; for a digit token, the
    log-probabilities of the ten digits "0".."9" at that step (how sure a number field's value was)."""

    piece: bytes
    logprob: float
    digits: tuple[float, ...] | None = None


class _LogprobTrace:
    """A llama.cpp logits processor that records each chosen token's log-probability.

    The processor sees the raw logits of every step (it runs before the grammar and the greedy
    choice) and, in `input_ids`, the token chosen at the step before; the last token (the one
    before end-of-text) is recorded when the end is sampled. Costs a log-softmax over the
    151,936-token vocabulary per token (0.2 ms, measured with numpy), next to the tens of
    milliseconds computing a token takes on 2 cores.
    """

    def __init__(self, llama) -> None:
        self.llama = llama
        self.digit_ids = batching.digit_ids(llama)
        self.tokens: list[TokenLogprob] = []
        self._last: np.ndarray | None = None  # log-softmax of the previous step

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if self._last is not None and len(input_ids):
            chosen = int(input_ids[-1])
            digits = tuple(float(self._last[i]) for i in self.digit_ids) if chosen in self.digit_ids else None
            piece = self.llama.detokenize([chosen])
            self.tokens.append(TokenLogprob(piece, float(self._last[chosen]), digits))
        self._last = batching.log_softmax(logits)
        return logits


@dataclass(frozen=True)
class PrefixState:
    """A llama.cpp context's state after a prompt prefix: its tokens and llama.cpp's own state bytes
    (the KV cache of those tokens, ~28 KB a token for Qwen2.5-1.5B).

    llama-cpp-python's `Llama.save_state` also copies its score matrix (n_batch x vocabulary
    float32: 311 MB for Qwen's 151,936 tokens) and `load_state` writes it back; with
    `logits_all=False` that matrix is never filled or read (sampling reads llama.cpp's own logits),
    so these two do the same without it. Written against llama-cpp-python 0.3 (pinned).
    """

    input_ids: np.ndarray  # (n_ctx,) int32, the first n_tokens valid
    n_tokens: int
    data: bytes
    seed: int

    @classmethod
    def save(cls, llama) -> PrefixState:
        import llama_cpp  # deferred: the compiled library loads only with the local backend

        size = llama_cpp.llama_state_get_size(llama._ctx.ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        n = int(llama_cpp.llama_state_get_data(llama._ctx.ctx, buffer, size))
        if n > int(size):
            raise LLMError("The local LLM's state could not be saved.")
        return cls(llama.input_ids.copy(), llama.n_tokens, ctypes.string_at(buffer, n), llama._seed)

    def load(self, llama) -> None:
        import llama_cpp  # deferred: the compiled library loads only with the local backend

        llama.input_ids = self.input_ids.copy()
        llama.n_tokens = self.n_tokens
        llama._requires_eval = True
        llama._seed = self.seed
        buffer = (ctypes.c_uint8 * len(self.data)).from_buffer_copy(self.data)
        if llama_cpp.llama_state_set_data(llama._ctx.ctx, buffer, len(self.data)) != len(self.data):
            raise LLMError("The local LLM's saved state could not be restored.")


_STATES: dict[tuple[int, str], PrefixState] = {}  # (model, prefix text) -> its state, oldest first


# The openai backend ----------------------------------------------------------------------------

# Alternatives asked for per token: OpenAI's maximum (and vLLM's default `max_logprobs`). At the
# sentence-number step the ten digits are read from them; a reply names one of at most
# `qa.reading.READER_EVIDENCE` + 1 numbers, so the digits that matter rank near the top.
TOP_LOGPROBS = 20
_DIGITS = tuple(str(d) for d in range(10))


def server_token_logprobs(content: list[dict], reply: str) -> tuple[TokenLogprob, ...]:
    """An OpenAI-style reply's `choices[0].logprobs.content` as `TokenLogprob`s, as the local model
    gives them: each token's bytes and natural-log probability and, at a digit token, the ten
    digits' log-probabilities from its `top_logprobs`.

    `content`: one dict per generated token, {"token": str, "logprob": float, "bytes": list[int] |
    None, "top_logprobs": [{"token", "logprob", ...}]}; `reply`: the reply's whole text, which the
    tokens' bytes are aligned to.

    Approximate where the server gives less than the local model's full distribution:
    - a digit outside the `top_logprobs` a server returns (`TOP_LOGPROBS`) gets the smallest
      log-probability given at that step, an upper bound of its own: its probability is at most
      overstated, so `qa.reading.ReaderSignals.answer_probability` is off by at most the mass of the
      missing digits at that floor (llama-cpp-python's server listed all ten at the seed question
      s05-en's number step, the tenth at -9.0);
    - a server that gives no `bytes` (llama-cpp-python's) names each token by its text decoded alone,
      so a token holding part of a character comes out empty: the missing bytes of the reply are
      shared among such tokens in order (each keeps its log-probability; which byte goes to which
      of two halves of a character does not move a span's mean).
    """
    pieces, records = [], []
    for entry in content:
        raw = entry.get("bytes")
        pieces.append(bytes(raw) if raw is not None else str(entry.get("token") or "").encode("utf-8"))
    pieces = _aligned(pieces, reply.encode("utf-8"))
    for entry, piece in zip(content, pieces):
        digits = None
        if piece.decode("utf-8", errors="ignore") in _DIGITS:
            given = {str(t.get("token")): float(t["logprob"]) for t in entry.get("top_logprobs") or []}
            given[piece.decode()] = float(entry["logprob"])
            floor = min(given.values())
            digits = tuple(given.get(d, floor) for d in _DIGITS)
        records.append(TokenLogprob(piece, float(entry["logprob"]), digits))
    return tuple(records)


def _aligned(pieces: list[bytes], reply: bytes) -> list[bytes]:
    """`pieces` with the bytes they lack (a server that names tokens by their text alone drops part
    characters) put back from `reply`, so that they join into it; unchanged when they already do or
    cannot be matched to it in order."""
    if b"".join(pieces) == reply:
        return pieces
    out, pending, at = list(pieces), [], 0  # pending: tokens seen empty since the last match

    def fill(gap: bytes, before: int) -> bool:
        if not gap:
            return True
        if pending:
            size = -(-len(gap) // len(pending))
            for k, i in enumerate(pending):
                out[i] = gap[k * size : (k + 1) * size]
            return True
        if before >= 0:  # a token that lost its trailing part of a character
            out[before] += gap
            return True
        return False

    last = -1
    for i, piece in enumerate(pieces):
        if not piece:
            pending.append(i)
            continue
        found = reply.find(piece, at)
        if found < 0 or not fill(reply[at:found], last):
            return pieces
        pending, at, last = [], found + len(piece), i
    if not fill(reply[at:], last):
        return pieces
    return out if b"".join(out) == reply else pieces


class ServerChat(StreamingChatModel):
    """An OpenAI-compatible server's chat model (LangChain's `ChatOpenAI`, `chat`) that also gives
    each token's log-probability, as the local model does.

    Asked with `logprobs=True` (the reader, `qa.reading.read`), it requests `logprobs` and
    `top_logprobs` (`TOP_LOGPROBS`) in one reply not streamed (llama-cpp-python's server streams a
    token's text decoded alone, so a character split over two tokens is lost from a streamed reply;
    the reader's reply is read whole anyway) and puts them, as `TokenLogprob`s
    (`server_token_logprobs`), in the chunk's `response_metadata["token_logprobs"]`; None when the
    server gave none (the reader's signals are then None). A reply that does not come within the
    client's timeout ends with the finish reason "time". Otherwise the reply is streamed as
    `ChatOpenAI` streams it.

    `json_object`: a JSON schema asked for as OpenAI's `response_format` `json_schema` is sent as
    `{"type": "json_object", "schema": ...}` instead, the form llama-cpp-python's server accepts
    (it refuses `json_schema`) and llama.cpp's own server also turns into a grammar: the same
    grammar the local model is held to (`LlamaGrammar.from_json_schema`), so the readings are the
    same (`QA_LLM_JSON_FORMAT`).
    """

    chat: Any
    json_object: bool = False
    top_logprobs: int = TOP_LOGPROBS

    @property
    def _llm_type(self) -> str:
        return "openai-compatible"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        fmt = kwargs.get("response_format") or {}
        if self.json_object and fmt.get("type") == "json_schema":
            kwargs["response_format"] = {"type": "json_object", "schema": fmt["json_schema"]["schema"]}
        if not kwargs.pop("logprobs", False):
            yield from self.chat._stream(messages, stop, run_manager, **kwargs)
            return
        import openai  # deferred: the OpenAI client loads only with its backend

        try:
            result = self.chat._generate(
                messages, stop, run_manager, logprobs=True, top_logprobs=self.top_logprobs, **kwargs
            )
        except openai.APITimeoutError:
            yield ChatGenerationChunk(
                message=AIMessageChunk(content="", response_metadata={"finish_reason": "time"})
            )
            return
        generation = result.generations[0]
        text = generation.message.content if isinstance(generation.message.content, str) else ""
        info = {**generation.message.response_metadata, **(generation.generation_info or {})}
        content = (info.get("logprobs") or {}).get("content")
        meta = {
            "finish_reason": info.get("finish_reason") or "stop",
            "token_logprobs": server_token_logprobs(content, text) if content else None,
        }
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text, response_metadata=meta))
        if run_manager and text:
            run_manager.on_llm_new_token(text, chunk=chunk)
        yield chunk


# Backends --------------------------------------------------------------------------------------


def _local(settings: Settings, max_tokens: int) -> BaseChatModel:
    llama = local_llama(settings)  # verified once per chat model, not again for its batcher
    return LlamaCppChat(
        llama=llama,
        max_tokens=max_tokens,
        batcher=local_batcher(settings, llama),
        timeout_s=settings.llm_timeout_s,
    )


def _openai(settings: Settings, max_tokens: int) -> BaseChatModel:
    if not settings.llm_base_url and not settings.llm_api_key:
        raise LLMError("The openai LLM backend needs QA_LLM_BASE_URL (or QA_LLM_API_KEY for OpenAI itself).")
    from langchain_openai import ChatOpenAI  # deferred: the OpenAI client loads only with its backend

    served = settings.llm_base_url is not None  # a server of our own, not OpenAI itself
    chat = ChatOpenAI(
        model=settings.llm_model or "default",
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",  # local servers ignore it; the client wants one
        max_tokens=max_tokens,
        temperature=0,
        timeout=settings.llm_timeout_s,
        max_retries=0,  # a dead server should fall back now, not after retries
        # Greedy as the local model decodes: llama-cpp-python's server penalises repeated tokens by
        # default (1.1), which changes a greedy reply that repeats its span as its rendering; llama.cpp's
        # own server and vLLM default to 1.0 (vLLM ignores the field, OpenAI would refuse it).
        extra_body={"repeat_penalty": 1.0} if served else None,
    )
    json_format = settings.llm_json_format
    if json_format == "auto":
        json_format = "json_object" if served else "json_schema"
    return ServerChat(chat=chat, json_object=json_format == "json_object")


def _ollama(settings: Settings, max_tokens: int) -> BaseChatModel:
    if not settings.llm_model:
        raise LLMError("The ollama LLM backend needs QA_LLM_MODEL (an Ollama model name, e.g. qwen2.5:1.5b).")
    from langchain_ollama import ChatOllama  # deferred: the Ollama client loads only with its backend

    return ChatOllama(
        model=settings.llm_model,
        base_url=settings.ollama_url,
        num_predict=max_tokens,
        num_ctx=N_CTX,
        temperature=0,
        client_kwargs={"timeout": settings.llm_timeout_s},
    )


def chat_model(settings: Settings, *, max_tokens: int | None = None) -> BaseChatModel:
    """The configured backend (`settings.llm_backend`, looked up in the registry) as a chat model.

    Raises `LLMError` when the backend is unknown, misconfigured or its model cannot be loaded.
    """
    backend = plugins.get_backend(settings.llm_backend)
    return backend.make(settings, max_tokens or settings.llm_max_tokens)


def _where(settings: Settings) -> str:
    """The configured backend named for an error message ("the local LLM")."""
    backend = plugins.backends().get(settings.llm_backend)
    return backend.where(settings) if backend else f"the {settings.llm_backend} LLM backend"


@dataclass
class Generation:
    """What a capped generation produced and why it stopped ("stop", "length" or "time")."""

    text: str = ""
    finish: str = "stop"
    first_token_s: float | None = None
    seconds: float = 0.0
    # Per generated token, when asked for (`logprobs=True`) and the backend gives them (local, and
    # openai when its server returns log-probabilities).
    tokens: tuple[TokenLogprob, ...] | None = None


def stream_text(
    model: BaseChatModel,
    prompt: list[BaseMessage],
    settings: Settings,
    *,
    max_tokens: int | None = None,
    **call: Any,
) -> Generator[str, None, Generation]:
    """Yield text deltas and return the `Generation`; stops at the time cap.

    Backend failures become `LLMError` with one sentence naming the backend. `call` goes to the
    model's `stream` (e.g. a backend's structured-output options, `Backend.json_options`).
    """
    max_tokens = max_tokens or settings.llm_max_tokens
    out = Generation()
    t0 = time.perf_counter()
    chunks = 0
    iterator = model.stream(prompt, **call)
    try:
        for chunk in iterator:
            meta = chunk.response_metadata or {}
            reason = meta.get("finish_reason") or meta.get("done_reason")
            if reason in ("length", "time"):  # "time": a batched reply dropped before it could start
                out.finish = reason
            if meta.get("token_logprobs") is not None:
                out.tokens = meta["token_logprobs"]
            delta = chunk.content if isinstance(chunk.content, str) else ""
            if delta:
                chunks += 1
                out.first_token_s = out.first_token_s or time.perf_counter() - t0
                out.text += delta
                yield delta
            if time.perf_counter() - t0 > settings.llm_timeout_s:
                out.finish = "time"
                break
    except QAError:
        raise
    except Exception as exc:  # any client or server failure of a third-party backend: one sentence
        detail = str(exc).splitlines()[0][:160].rstrip(".") if str(exc) else type(exc).__name__
        where = _where(settings)
        raise LLMError(f"{where[0].upper()}{where[1:]} did not answer ({detail}).") from exc
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    if out.finish == "stop" and chunks >= max_tokens:  # servers that do not report the reason
        out.finish = "length"
    out.seconds = time.perf_counter() - t0
    return out


def generate(
    model: BaseChatModel, prompt: list[BaseMessage], settings: Settings, *, max_tokens: int, **call: Any
) -> Generation:
    """The whole reply as a `Generation` (text, finish reason, first-token and total seconds)."""
    pieces = stream_text(model, prompt, settings, max_tokens=max_tokens, **call)
    while True:
        try:
            next(pieces)
        except StopIteration as stop:
            return stop.value


def timeout_message(settings: Settings) -> str:
    """The one sentence for a reply cut at the time cap, naming the cap and the setting that raises it."""
    return (
        f"The language model did not finish within the time cap of {settings.llm_timeout_s:g} s "
        "(QA_LLM_TIMEOUT_S; a busy machine is the usual cause)."
    )


def complete(model: BaseChatModel, prompt: list[BaseMessage], settings: Settings, *, max_tokens: int) -> str:
    """The whole reply to a short prompt (condense, translate), within the same caps."""
    return generate(model, prompt, settings, max_tokens=max_tokens).text.strip()


def register() -> None:
    """Register the LLM backends and the `generative` mode (called once by `qa.plugins.load_plugins`)."""
    plugins.register_backend(
        plugins.Backend(
            "local",
            _local,
            lambda s: "the local LLM",
            # llama-cpp-python turns a JSON schema into a grammar: the reply cannot leave the schema.
            json_options=lambda schema: {"response_format": {"type": "json_object", "schema": schema}},
            token_logprobs=True,
        )
    )
    plugins.register_backend(
        plugins.Backend(
            "openai",
            _openai,
            lambda s: f"the openai LLM backend at {s.llm_base_url or 'api.openai.com'}",
            json_options=lambda schema: {
                "response_format": {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
            },
            token_logprobs=True,  # when the server returns them (ServerChat)
        )
    )
    plugins.register_backend(
        plugins.Backend(
            "ollama",
            _ollama,
            lambda s: f"the ollama LLM backend at {s.ollama_url}",
            json_options=lambda schema: {"format": schema},
        )
    )
