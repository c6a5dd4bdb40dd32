"""Alignment: English words paired with the Arabic words they render by the similarity of their
contextual vectors in a multilingual encoder (SimAlign, Jalili Sabet et al. 2020, "argmax").

`Aligner.similarities(english, english_spans, arabic, arabic_spans)` encodes each sentence once
with EmbeddingGemma-300M (the torch weights `qa models fetch` verifies, the model the project
already ships), takes the hidden states of layer `LAYER` (of 24), makes each word's vector the
mean of the vectors of the subword tokens its [start, end) offsets overlap, and returns the cosine
matrix (English words x Arabic words). `mutual_best` keeps SimAlign's argmax pairs: an English
word and an Arabic word each the other's most similar. No training, no added LLM call.

What qa.wordcheck makes of it (a weak witness, only for ordinary content words the dictionaries
leave unsupported, above a threshold fitted by bench/calibrate_wordcheck.py) is described there.
Leaves out: SimAlign's itermax and match variants, subword-level alignment (a word is the mean of
its tokens), and the int8 ONNX graph (it outputs the sentence vector only, not the token vectors:
this loads the torch model beside it: ~0.95 GB resident, torch ~0.24 GB and 18 layers ~0.7 GB).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from qa.errors import ModelError

MODEL_FOLDER = "embeddinggemma-300m"  # under models_dir (qa.models.EMBEDDING_GEMMA.target)
# The hidden layer whose token vectors are compared: SimAlign found the middle layers of mBERT and
# XLM-R best (8 of 12); the probe on this model used 18 of 24 (names of a faithful
# rendering 0.65-0.81 and mutual, invented ones 0.46-0.51 and not).
LAYER = 18
MAX_TOKENS = 512  # a sentence longer than this is cut (its last words get no vector)
CACHE = 2048  # sentences whose token vectors are kept (the Arabic source is checked many times)


class Aligner:
    """EmbeddingGemma's contextual token vectors (torch, CPU), per sentence, cached."""

    def __init__(self, folder: Path, *, threads: int = 2, layer: int = LAYER) -> None:
        # deferred: torch and transformers load only when the alignment witness is used
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            self.model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
        except Exception as exc:  # a missing or broken folder: one sentence, no traceback
            raise ModelError(
                f"Could not load the alignment model in {folder} ({exc}); run `python -m qa models fetch`."
            ) from exc
        torch.set_num_threads(threads)
        # Only the first `layer` layers run (the later ones are dropped: a quarter less time and
        # memory); their last output, before the final norm, is read by a hook.
        self.model.layers = self.model.layers[:layer]
        self.model.config.num_hidden_layers = layer
        self._captured: list = []
        self.model.layers[layer - 1].register_forward_hook(lambda _m, _i, out: self._captured.append(out))
        self.layer = layer
        self._torch = torch
        self._lock = threading.Lock()  # torch modules are not safe to call from many threads at once
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, offsets) of `text`'s tokens at `layer`: L2-normalised float32 rows, and each
        token's [start, end) character offsets (special tokens dropped)."""
        with self._lock:
            found = self._cache.get(text)
            if found is not None:
                self._cache.move_to_end(text)
                return found
        found = self.encode([text])[0]
        with self._lock:
            self._cache[text] = found
            while len(self._cache) > CACHE:
                self._cache.popitem(last=False)
        return found

    def encode(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`tokens` of several texts in one batch (no cache: the calibration fills it with `prime`)."""
        if not texts:
            return []
        batch = self.tokenizer(
            texts,
            return_offsets_mapping=True,
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        )
        offsets = batch.pop("offset_mapping").numpy()
        special = batch.pop("special_tokens_mask", None)
        with self._lock, self._torch.inference_mode():
            self._captured.clear()
            self.model(**batch)
            out_layer = self._captured[-1]
            hidden = (out_layer[0] if isinstance(out_layer, tuple) else out_layer).float().numpy()
        out = []
        mask = batch["attention_mask"].numpy().astype(bool)
        for row in range(len(texts)):
            keep = mask[row] & (offsets[row, :, 1] > offsets[row, :, 0])
            if special is not None:
                keep &= ~special[row].numpy().astype(bool)
            vectors = hidden[row][keep].astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            out.append((vectors, offsets[row][keep].astype(np.int64)))
        return out

    def prime(self, texts: list[str], *, batch_size: int = 8) -> None:
        """Encode many texts into the cache, `batch_size` at a time (benchmarks, calibration)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            for text, found in zip(chunk, self.encode(chunk)):
                with self._lock:
                    self._cache[text] = found
        with self._lock:
            while len(self._cache) > max(CACHE, len(todo)):
                self._cache.popitem(last=False)

    def words(self, text: str, spans: list[tuple[int, int]]) -> np.ndarray:
        """One normalised vector per word [start, end) of `text`: the mean of the tokens its span
        overlaps (a zero row for a word no token covers, e.g. cut at `MAX_TOKENS`)."""
        vectors, offsets = self.tokens(text)
        out = np.zeros((len(spans), vectors.shape[1] if len(vectors) else 1), dtype=np.float32)
        for i, (start, end) in enumerate(spans):
            hit = (offsets[:, 0] < end) & (offsets[:, 1] > start)
            if hit.any():
                v = vectors[hit].mean(axis=0)
                out[i] = v / max(float(np.linalg.norm(v)), 1e-12)
        return out

    def similarities(
        self,
        english: str,
        english_spans: list[tuple[int, int]],
        arabic: str,
        arabic_spans: list[tuple[int, int]],
    ) -> np.ndarray:
        """Cosine of each English word (rows) with each Arabic word (columns)."""
        if not english_spans or not arabic_spans:
            return np.zeros((len(english_spans), len(arabic_spans)), dtype=np.float32)
        return self.words(english, english_spans) @ self.words(arabic, arabic_spans).T


def mutual_best(sim: np.ndarray) -> dict[int, int]:
    """SimAlign's argmax alignment: English word i -> Arabic word j when j is i's most similar
    Arabic word and i is j's most similar English word."""
    if sim.size == 0:
        return {}
    rows, cols = sim.argmax(axis=1), sim.argmax(axis=0)
    return {i: int(j) for i, j in enumerate(rows) if cols[j] == i and sim[i, j] > 0}


_ALIGNERS: dict[Path, Aligner] = {}
_LOAD = threading.Lock()


def aligner(models_dir: Path, *, threads: int = 2) -> Aligner:
    """The process's aligner for the model under `models_dir`, loaded once (~15 s, ~0.95 GB)."""
    folder = Path(models_dir) / MODEL_FOLDER
    with _LOAD:
        if folder not in _ALIGNERS:
            _ALIGNERS[folder] = Aligner(folder, threads=threads)
        return _ALIGNERS[folder]


def available(models_dir: Path) -> bool:
    """True when the torch model's weights are fetched (`qa models fetch`)."""
    return (Path(models_dir) / MODEL_FOLDER / "model.safetensors").is_file()
