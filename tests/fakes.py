"""Small deterministic stand-ins for the fast test lane, registered through the real plugin hook.

`hash` is an embedder that hashes normalised tokens (qa.text.tokens, so Arabic matching works as in
BM25) into 256 dimensions: the same text always gives the same vector, and texts sharing words are
close. `scripted` is an LLM backend whose replies are set by the test (`ScriptedChat.script`), or,
by default, the first evidence sentence quoted back with a [1] marker. Load them with
`QA_PLUGINS=tests.fakes` (the CLI in a subprocess) or `plugins.load_plugins()` after setting it.
Leaves out: any claim about quality. Fakes serve plumbing tests (CLI edges, rendering, store
writes); a test that proves retrieval, answers or verification uses the real models.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from qa import plugins
from qa import text as qtext
from qa.embeddings import Embedder
from qa.llm import StreamingChatModel

DIM = 256


class HashEmbedder(Embedder):
    """Bag of hashed tokens, L2-normalised: (n, 256) float32. Deterministic across processes.
    `hash2` (the fast lane's second embedder) salts the hash, so its vectors differ."""

    name = "hash"
    max_tokens = 2048

    def __init__(self, name: str = "hash") -> None:
        self.name = name
        self.salt = b"" if name == "hash" else name.encode()

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(DIM, dtype=np.float32)
        for token in qtext.tokens(text) or [text]:
            h = int.from_bytes(hashlib.blake2b(self.salt + token.encode(), digest_size=8).digest(), "little")
            v[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_documents(self, texts, *, progress=False):
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    def encode_query(self, text):
        return self._vector(text)

    def count_tokens(self, text):
        return max(1, len(text.split()))


class ScriptedChat(StreamingChatModel):
    """A chat model that streams scripted replies word by word (class-level `script`, used in order)."""

    script: ClassVar[list[str | tuple[str, tuple]]] = []  # a reply, or (reply, its TokenLogprobs)
    prompts: ClassVar[list[list[BaseMessage]]] = []  # every prompt seen, for assertions
    max_tokens: int = 256

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _reply(self, messages: list[BaseMessage]) -> str | tuple[str, tuple]:
        ScriptedChat.prompts.append(messages)
        if ScriptedChat.script:
            return ScriptedChat.script.pop(0)
        quoted = re.search(r"\[1\] «([^»]*)»", str(messages[-1].content))
        return f"{quoted.group(1)} [1]" if quoted else "?"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages)
        # A scripted (text, tokens) pair also gives the tokens' log-probabilities when asked for.
        reply, tokens = reply if isinstance(reply, tuple) else (reply, None)
        words = re.findall(r"\S+\s*", reply)
        for i, word in enumerate(words[: self.max_tokens]):
            last = i == len(words) - 1 or i == self.max_tokens - 1
            finish = ("stop" if i == len(words) - 1 else "length") if last else None
            meta = {"finish_reason": finish} if finish else {}
            if finish and tokens is not None and kwargs.get("logprobs"):
                meta["token_logprobs"] = tokens
            yield ChatGenerationChunk(message=AIMessageChunk(content=word, response_metadata=meta))


def register() -> None:
    """Register `hash`, `hash2` and `scripted` (loaded by `qa.plugins.load_plugins` via QA_PLUGINS)."""
    for name in ("hash", "hash2"):
        plugins.register_embedder(
            plugins.EmbedderFactory(name, lambda d, t, b, name=name: HashEmbedder(name), uses_torch=False)
        )
    plugins.register_backend(
        plugins.Backend(
            "scripted",
            lambda s, n: ScriptedChat(max_tokens=n),
            lambda s: "the scripted LLM",
            token_logprobs=True,
        )
    )
