"""Batched local generation: the local model's replies to several people decoded together.

On 2 cores one token of one reply costs ~75 ms; with 4 to 8 replies in one decode step, 57-89 ms
each (bench/bench_batch.py, reader prompts), and prompts are read at 60-63 tokens a second however
many share a step: these cores are bound by arithmetic, not memory, so batching gains 0-25% here,
far less than on a machine with more cores per memory channel. Measured through the served API
(bench/bench_load.py) it still pays: at 5 users the reply p50 falls from 64 to 40 s, at 20 the p95
from 180 to 148 s; and a reader that shares its slots can drop what cannot finish in time.

`Batcher` owns a llama.cpp context of its own over the process's loaded model (the weights are
shared with `llama_cpp.Llama`, which keeps tokenizing) with `slots` sequences of `n_ctx` cells each
(`kv_unified` off: each sequence attends only to its own cells). One worker thread runs the loop:

1. admit queued jobs into free slots: a job's prompt prefix (the prompt's instructions and worked
   examples, the same for every question) is restored from its saved sequence state, or evaluated
   once in the slot and saved (~28 KB a token: ~20 MB for the reader's 693 tokens; `PREFIX_STATES`);
2. build one batch: each decoding job's last token, then prompt tokens of jobs still reading their
   prompt, up to `n_batch`; decode it;
3. sample each job whose logits are out: the likeliest token its grammar allows (what the chain
   llama-cpp-python's `create_completion` builds at temperature 0 picks, asked about the likeliest
   token first: `_allowed`), and the raw logits' log-softmax when asked for
   (`qa.llm.TokenLogprob`, what the reader's signals read); an end-of-generation token or
   `max_tokens` ends the job.

Prompt lookup (`lookup` > 0, `QA_LLM_LOOKUP`): a decoding job also feeds, after its last token,
the tokens `draft` finds in its own prompt (the reader copies its span from the sentences and its
JSON keys from the worked examples), each with its logits, `lookup` at most a step, and only while
it is the one reply in the batcher (with several, their rows already fill the cores: measured at 20
users, drafting cost short answers); each drafted token the greedy choice confirms is kept, and the
cells after the first one it does not are removed. On 2 cores a
prompt token is read in ~17 ms and a step of one row takes ~110 ms, so a step with 8 drafts should
cost about two plain steps (estimated from those two rates, not timed alone) and pays when two or
more are confirmed (45% of drafted tokens were, on the seed questions). The reply is the greedy one
up to rounding: a drafted token's cell is computed in a batch of several rows, whose kernels round
differently from a one-row step; on one reader's reply a log-probability had moved by 0.09 before
the two replies parted, so a close call can go the other way (as with several people's replies in
one batch). Measured on the seed and dev
questions: docs/measurements.md.

A job's pieces come back through a queue to the thread that asked (`Batcher.generate`); closing
that generator (the caller's time cap) cancels the job at the next step. A job whose deadline
passes while it waits for a slot, or that the running estimate (prompt tokens × ms a prompt token
+ typical reply tokens × ms a step) says cannot finish before it, is dropped unstarted with the
finish reason "time": its slot goes to a reading that can still be shown.

Leaves out: prompt lookup without the batcher (`QA_LLM_PARALLEL=1`: llama-cpp-python's own
completion), sampling other than greedy, stop strings (end-of-generation tokens end a reply; the
callers pass none), sharing a prefix's cells between slots (each slot gets its own copy of the
state, a few milliseconds), and batching across processes (a deployment with more people uses an
LLM server: README, "Many users").
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from qa.errors import LLMError

log = logging.getLogger(__name__)

N_BATCH = 512  # tokens in one decode: prompt chunks of 512 cost no more a token than larger ones (measured)
PREFIX_STATES = 8  # saved prefix states kept (reader, second reading, answer, condense, translate: 5 in use)
TYPICAL_REPLY_TOKENS = 48.0  # the first estimate of a reply's length, before any job finished (reader JSON)


@dataclass(frozen=True)
class Step:
    """One generated token: its bytes (UTF-8, possibly part of a character); when the job asked for
    them, its natural-log probability before the grammar constrained the choice and, for a digit
    token, the log-probabilities of "0".."9" at that step (what `qa.llm.TokenLogprob` keeps)."""

    piece: bytes
    logprob: float | None = None
    digits: tuple[float, ...] | None = None


@dataclass
class _Job:
    tokens: list[int]
    prefix_len: int
    max_tokens: int
    grammar: tuple[str, str] | None  # (GBNF text, root rule)
    logprobs: bool
    deadline: float  # time.monotonic() seconds
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # worker state
    seq: int = -1
    pos: int = 0  # next position to evaluate
    pending: list[int] = field(default_factory=list)  # prompt tokens still to evaluate
    save_at: int = 0  # save the prefix state when `pos` reaches this (0: nothing to save)
    last: int | None = None  # the token to feed next step (decoding)
    n_out: int = 0
    sampler: object | None = None
    rows: list[int] = field(default_factory=list)  # this step's rows in the batch with logits
    generated: list[int] = field(default_factory=list)  # the reply's tokens so far
    drafts: list[int] = field(default_factory=list)  # this step's drafted tokens (prompt lookup)


_STOP = object()  # queued by `Batcher.close`


class Batcher:
    """Decodes up to `slots` replies of one model together (see the module docstring).

    `llama`: a loaded `llama_cpp.Llama` (its model is shared, its context untouched); `n_ctx`:
    cells per slot (prompt + reply tokens of one job); `n_threads`: CPU threads of the decode.
    Raises `LLMError` when llama.cpp cannot make the context (out of memory).
    """

    def __init__(self, llama, *, slots: int, n_ctx: int, n_threads: int, lookup: int = 0) -> None:
        import llama_cpp  # deferred: the compiled library loads only with the local backend
        from llama_cpp import _internals

        self._lib = llama_cpp
        self.llama = llama
        self.slots = slots
        self.n_ctx = n_ctx
        self.lookup = lookup
        self.drafted = self.accepted = 0  # drafted tokens, and those the model confirmed (bench, tests)
        # The model's own context's parameters (flash attention off, as llama-cpp-python sets it), so
        # a reply decoded alone here gets the same logits as on that context, give or take rounding.
        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx * slots
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = slots
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = False
        try:
            self._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        except ValueError as exc:
            raise LLMError(
                f"The local LLM could not make room for {slots} parallel replies ({exc})."
            ) from exc
        self._batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)
        self._vocab = llama._model.vocab
        self._n_vocab = llama.n_vocab()
        self._digit_ids = digit_ids(llama)
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._free = list(range(slots))
        self._active: list[_Job] = []
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._ms_per_token = 20.0  # prompt tokens, EWMA over prompt-heavy steps
        self._ms_per_step = 60.0  # one decoding step, EWMA
        self._reply_tokens = TYPICAL_REPLY_TOKENS
        self._candidates = None  # the whole vocabulary as llama.cpp candidates, for the grammar
        self._view: np.ndarray | None = None
        self.peak_sequences = 0  # the most replies one decode has held (tests, bench/bench_load.py)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="qa-batcher", daemon=True)
        self._thread.start()

    # The caller's side ---------------------------------------------------------------------------

    def generate(
        self,
        tokens: list[int],
        *,
        prefix_len: int,
        max_tokens: int,
        grammar: tuple[str, str] | None = None,
        logprobs: bool = False,
        timeout_s: float,
    ) -> Generator[Step, None, str]:
        """Yield the reply's `Step`s and return why it ended: "stop" (end of generation), "length"
        (`max_tokens`) or "time" (dropped unstarted: it could not finish within `timeout_s` s).

        `tokens`: the whole prompt; its first `prefix_len` are a prefix whose state is saved and
        reused. Raises `LLMError` when the prompt does not fit in a slot's `n_ctx` cells or the
        decode fails.
        """
        if len(tokens) >= self.n_ctx:
            raise LLMError(
                f"The prompt ({len(tokens)} tokens) does not fit the local LLM's context of {self.n_ctx}."
            )
        max_tokens = min(max_tokens, self.n_ctx - len(tokens))
        prefix_len = min(prefix_len, len(tokens) - 1)  # the last prompt token's logits start the reply
        job = _Job(list(tokens), prefix_len, max_tokens, grammar, logprobs, time.monotonic() + timeout_s)
        self._queue.put(job)
        try:
            while True:
                try:  # a job still queued at its deadline is given up here, not left waiting
                    item = job.out.get(timeout=max(job.deadline - time.monotonic(), 0) + 1)
                except queue.Empty:
                    if job.seq >= 0 or job.n_out:
                        continue  # started: the caller's own time cap cuts it between pieces
                    return "time"
                if isinstance(item, Step):
                    yield item
                elif isinstance(item, Exception):
                    raise item
                else:
                    return item
        finally:
            job.cancelled.set()

    def close(self) -> None:
        """Stop the worker once the replies in flight end, and free the context (~57 MB a slot)."""
        self._queue.put(_STOP)
        self._thread.join()
        self._batch.close()
        self._ctx.close()

    # The worker ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping or self._active:
            try:
                self._admit()
                if self._active:
                    self._step()
            except Exception as exc:  # a failed decode: every job in flight gets the one sentence
                log.exception("batched decoding failed")
                error = LLMError(f"The local LLM failed while decoding ({type(exc).__name__}).")
                for job in self._active:
                    self._end(job, error)
                self._active.clear()

    def _admit(self) -> None:
        while self._free:
            try:
                job = self._queue.get(block=not self._active, timeout=None if not self._active else 0)
            except queue.Empty:
                return
            if job is _STOP:
                self._stopping = True
                return
            if job.cancelled.is_set():
                continue
            remaining_ms = (job.deadline - time.monotonic()) * 1000
            estimate_ms = self._estimate_ms(job)
            if remaining_ms <= 0 or estimate_ms > remaining_ms:
                log.info(
                    "reply dropped unstarted: %.0f ms estimated, %.0f ms left", estimate_ms, remaining_ms
                )
                job.out.put("time")
                continue
            job.seq = self._free.pop()
            try:
                self._start(job)
            except LLMError as exc:  # this job's own failure (its state or grammar): the others go on
                self._end(job, exc)
                continue
            self._active.append(job)

    def _estimate_ms(self, job: _Job) -> float:
        prefix = tuple(job.tokens[: job.prefix_len])
        to_read = len(job.tokens) - (job.prefix_len if prefix in self._states else 0)
        return to_read * self._ms_per_token + min(self._reply_tokens, job.max_tokens) * self._ms_per_step

    def _start(self, job: _Job) -> None:
        lib = self._lib
        ctx = self._ctx.ctx
        lib.llama_memory_seq_rm(self._ctx.memory, job.seq, -1, -1)
        prefix = tuple(job.tokens[: job.prefix_len])
        state = self._states.get(prefix) if prefix else None
        if state is not None:
            self._states.move_to_end(prefix)
            buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if lib.llama_state_seq_set_data(ctx, buffer, len(state), job.seq) == 0:
                raise LLMError("The local LLM's saved prompt state could not be restored.")
            job.pos = job.prefix_len
        else:
            job.pos = 0
            job.save_at = job.prefix_len
        job.pending = job.tokens[job.pos :]
        if job.grammar:
            gbnf, root = job.grammar
            job.sampler = lib.llama_sampler_init_grammar(
                self._vocab, gbnf.encode("utf-8"), root.encode("utf-8")
            )
            if not job.sampler:
                raise LLMError("The local LLM could not compile the reply's grammar.")

    def _step(self) -> None:
        lib = self._lib
        batch = self._batch.batch
        n = 0
        prompt_tokens = 0
        seqs: set[int] = set()

        def add(job: _Job, token: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = job.pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = job.seq
            batch.logits[n] = logits
            seqs.add(job.seq)
            if logits:
                job.rows.append(n)
            job.pos += 1
            n += 1

        drafted = 0
        # Drafts only for a reply decoded alone: with several replies in a step, its rows already
        # fill the cores, and at 20 users drafting left 23 short answers in time against 30
        # (bench_load, docs/measurements.md).
        lookup = self.lookup if len(self._active) == 1 else 0
        for job in self._active:
            job.rows, job.drafts = [], []
            if job.last is not None and not job.pending:
                add(job, job.last, True)
                # The one reply alone: its drafts fit the batch; they must fit its slot's cells.
                budget = min(lookup, job.max_tokens - job.n_out - 1, self.n_ctx - job.pos)
                if budget > 0:
                    job.drafts = draft(job.tokens + job.generated, budget)
                    for token in job.drafts:
                        add(job, token, True)
                    drafted += len(job.drafts)
        for job in self._active:  # prompts, oldest first, in the room left
            if not job.pending or n >= N_BATCH:
                continue
            take = min(len(job.pending), N_BATCH - n)
            if job.save_at > job.pos:  # stop at the prefix's end so its state can be saved alone
                take = min(take, job.save_at - job.pos)
            chunk, job.pending = job.pending[:take], job.pending[take:]
            for i, token in enumerate(chunk):
                add(job, token, logits=not job.pending and i == len(chunk) - 1)
            prompt_tokens += take
        batch.n_tokens = n
        self.peak_sequences = max(self.peak_sequences, len(seqs))
        t0 = time.perf_counter()
        status = lib.llama_decode(self._ctx.ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status}")
        ms = (time.perf_counter() - t0) * 1000
        if prompt_tokens > n // 2:
            self._ms_per_token = 0.8 * self._ms_per_token + 0.2 * ms / n
        elif not drafted:  # a step with drafts also gives more than one token a reply: not typical
            self._ms_per_step = 0.8 * self._ms_per_step + 0.2 * ms
        self.drafted += drafted
        for job in list(self._active):
            if job.save_at and job.pos == job.save_at:
                self._save_prefix(job)
            if job.cancelled.is_set():
                self._finish(job, None)
            elif job.rows:
                self._sample(job)

    def _save_prefix(self, job: _Job) -> None:
        lib = self._lib
        ctx = self._ctx.ctx
        job.save_at = 0
        size = lib.llama_state_seq_get_size(ctx, job.seq)
        buffer = (ctypes.c_uint8 * int(size))()
        written = lib.llama_state_seq_get_data(ctx, buffer, size, job.seq)
        if written:
            self._states[tuple(job.tokens[: job.prefix_len])] = ctypes.string_at(buffer, written)
            while len(self._states) > PREFIX_STATES:
                self._states.popitem(last=False)

    def _sample(self, job: _Job) -> None:
        """The job's next token from its first row's logits; then, while that token is the next
        draft, the token after it from that draft's row (the draft was right: its cell is kept).
        The cells of the drafts after the first wrong one are removed, and decoding goes on from
        the last token chosen."""
        accepted = 0
        for i, row in enumerate(job.rows):
            pointer = self._lib.llama_get_logits_ith(self._ctx.ctx, row)
            token = self._choose(job, np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)))
            if token is None:  # the reply ended: its cells go with its slot
                return
            if i < len(job.drafts) and token == job.drafts[i]:
                accepted += 1
                self.accepted += 1
                continue
            break
        rejected = len(job.drafts) - accepted
        if rejected:
            job.pos -= rejected
            self._lib.llama_memory_seq_rm(self._ctx.memory, job.seq, job.pos, -1)

    def _choose(self, job: _Job, logits: np.ndarray) -> int | None:
        """The likeliest token the grammar allows by `logits` (one batch row's, `(n_vocab,)`), sent
        to the caller; None when the reply ends there (end of generation or `max_tokens`)."""
        lib = self._lib
        token = int(np.argmax(logits))
        if job.sampler is not None:
            if not self._allowed(job.sampler, token, float(logits[token])):
                token = self._best_allowed(job.sampler, logits)
            lib.llama_sampler_accept(job.sampler, token)
        if lib.llama_vocab_is_eog(self._vocab, token):
            self._finish(job, "stop")
            return None
        piece = self.llama.detokenize([token])
        if job.logprobs:
            logsoftmax = log_softmax(logits)
            digits = (
                tuple(float(logsoftmax[i]) for i in self._digit_ids) if token in self._digit_ids else None
            )
            job.out.put(Step(piece, float(logsoftmax[token]), digits))
        else:
            job.out.put(Step(piece))
        job.n_out += 1
        job.last = token
        job.generated.append(token)
        if job.n_out >= job.max_tokens:
            self._finish(job, "length")
            return None
        return token

    # Grammar, then greedy: the likeliest token the grammar allows. Asking the grammar about the
    # likeliest token alone first gives the same token as filtering the whole vocabulary and taking
    # the best left (what llama-cpp-python's chain does), for ~0.1 ms instead of ~18 ms a token
    # (152k candidates; measured on the seed questions' readings); only a refused token costs the
    # whole pass.

    def _allowed(self, grammar, token: int, logit: float) -> bool:
        lib = self._lib
        one = (lib.llama_token_data * 1)(lib.llama_token_data(token, logit, 0.0))
        candidates = lib.llama_token_data_array(one, 1, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(candidates))
        return one[0].logit != float("-inf")

    def _best_allowed(self, grammar, logits: np.ndarray) -> int:
        lib = self._lib
        if self._candidates is None:
            self._candidates = (lib.llama_token_data * self._n_vocab)()
            self._view = np.frombuffer(
                self._candidates, dtype=np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
            )
        view = self._view
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        candidates = lib.llama_token_data_array(self._candidates, self._n_vocab, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(candidates))
        size = int(candidates.size)
        best = int(np.argmax(view["logit"][:size]))
        if view["logit"][best] == float("-inf"):
            raise LLMError("The local LLM's grammar allows no next token.")
        return int(view["id"][best])

    def _finish(self, job: _Job, reason: str | None) -> None:
        if reason == "stop":
            self._reply_tokens = 0.8 * self._reply_tokens + 0.2 * max(job.n_out, 1)
        self._end(job, reason)
        self._active.remove(job)

    def _end(self, job: _Job, reason: str | Exception | None) -> None:
        lib = self._lib
        if job.sampler is not None:
            lib.llama_sampler_free(job.sampler)
            job.sampler = None
        if job.seq >= 0:
            lib.llama_memory_seq_rm(self._ctx.memory, job.seq, -1, -1)
            self._free.append(job.seq)
            job.seq = -1
        if reason is not None:
            job.out.put(reason)


LOOKUP_NGRAMS = (3, 2)  # the reply's last tokens looked up in the prompt, longest first


def draft(history: list[int], limit: int) -> list[int]:
    """Prompt lookup (Saxena 2023; `prompt_lookup_num_tokens` in Hugging Face transformers): the
    tokens that followed the latest earlier occurrence of the last 3 (else 2) tokens of
    `history` (the prompt, then the reply so far), at most `limit` of them; [] when none occurs.
    A reader copies its span from the numbered sentences and its JSON keys from the worked examples,
    so most of its reply is such a run.

    Example: draft([5, 6, 7, 8, 9, 1, 6, 7], 3) == [8, 9, 1]
    """
    for n in LOOKUP_NGRAMS:
        if len(history) <= n:
            continue
        tail = history[-n:]
        for start in range(len(history) - n - 1, -1, -1):
            if history[start : start + n] == tail:
                return history[start + n : start + n + limit]
    return []


def digit_ids(llama) -> list[int]:
    """The token ids of "0".."9" (what a number field's certainty is read from: qa.reading)."""
    return [llama.tokenize(str(d).encode(), add_bos=False, special=False)[0] for d in range(10)]


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities of raw logits, `(n_vocab,) float32` in and out (max-shifted, so no
    overflow); ~0.2 ms for Qwen's 151,936 tokens."""
    top = float(logits.max())
    return logits - (top + float(np.log(np.exp(logits - top).sum())))


def utf8_pieces() -> codecs.IncrementalDecoder:
    """A decoder for token bytes that may split a character (invalid bytes dropped, as llama-cpp-python does)."""
    return codecs.getincrementaldecoder("utf-8")(errors="ignore")
