"""Cite rank: which evidence sentence holds the answer, learned from the signals retrieval already has.

The hand-weighted citation rank (qa.retrieve: similarity, overlap, chunk score, answer type) puts
the answer's sentence first for about three questions in four; most of the rest are lost between
ranks 2 and 3 (docs/measurements.md, "Citing the answer's sentence"). No reranker weights can be
installed here (no cross-encoder, no NLI model), so this module learns the rank from what there is:
each evidence sentence of a question is a row of `FEATURES` (both embedders' similarities, the
question-word overlap plain and weighted by rarity, the answer-type misfit, its passage's scores and
place, its own place and length, its neighbours' similarity and overlap), and its score is a linear function
of them whose weights are fitted, one set per question language, as a conditional logit
(McFadden 1974; the listwise ranking loss with one relevant item, Cao et al. 2007, "ListNet"):
the softmax of the scores over one question's sentences is the chance that each is the answer's
sentence, maximised for the sentence that holds the gold span.

Pure functions over numpy arrays, in the style of bm25s' scoring: `design` turns the raw signals of
one question's sentences into the model's inputs (adding each signal's gap to the question's best,
so a sentence is judged against its rivals), `scores` applies fitted `Weights`, `softmax` turns them
into chances. Why our own: scikit-learn has no conditional logit and its pairwise alternatives
would need a pickled model at run time; the whole model here is a few dozen numbers in
`qa/citerank.json`, fitted by `bench/fit_citerank.py` with scipy.

Leaves out: fitting (bench/fit_citerank.py), nonlinear models (boosted trees need a pickle or a
runtime of their own), the abstention score (`Evidence.score`, calibrated separately and untouched)
and the order the reader reads evidence in (qa.reading).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.types import EVIDENCE_SIGNALS

# The raw signals qa.retrieve records for each evidence sentence (`Evidence.features`), in order.
RAW = EVIDENCE_SIGNALS
# Signals whose gap to the question's best value is a feature too (`design`).
GAPPED = ("sim", "sim2", "overlap_idf", "chunk")
FEATURES = RAW + tuple(f"{name}_gap" for name in GAPPED)

WEIGHTS = Path(__file__).with_name("citerank.json")


@dataclass(frozen=True)
class Weights:
    """One question language's fitted model: scores = ((design - mean) / scale) @ coef.

    `mean`, `scale` and `coef` are (len(FEATURES),) float arrays; `source` says which run fitted it.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    source: str = ""

    def to_dict(self) -> dict:
        """The JSON shape in qa/citerank.json (one per language)."""
        return {
            "features": list(FEATURES),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "coef": [round(float(v), 6) for v in self.coef],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Weights:
        """Read one language's model; ValueError when it was fitted on other features."""
        if tuple(d.get("features", ())) != FEATURES:
            raise ValueError("the cite-rank weights were fitted on other features; refit them")
        return cls(
            np.asarray(d["mean"], float),
            np.asarray(d["scale"], float),
            np.asarray(d["coef"], float),
            d.get("source", ""),
        )


def design(raw: np.ndarray) -> np.ndarray:
    """The model's inputs for one question's sentences: `raw` (n, len(RAW)) float, columns as
    `RAW`, with the gap of each `GAPPED` column to its maximum over the n sentences appended
    (0 for the best, negative below it). Returns (n, len(FEATURES)).

    Example: design(np.array([[0.5] + [0] * 10, [0.7] + [0] * 10]))[:, len(RAW)] is about [-0.2, 0.0]
    """
    raw = np.asarray(raw, dtype=float).reshape(-1, len(RAW))
    cols = [RAW.index(name) for name in GAPPED]
    return np.hstack([raw, raw[:, cols] - raw[:, cols].max(axis=0, initial=-np.inf)])


def scores(x: np.ndarray, w: Weights) -> np.ndarray:
    """Linear scores (logits) of design rows `x` (n, len(FEATURES)) under `w`: (n,) float."""
    return ((x - w.mean) / w.scale) @ w.coef


def softmax(z: np.ndarray) -> np.ndarray:
    """The chance each of one question's sentences is the answer's sentence, from its scores (n,).

    Example: softmax(np.array([0.0, 0.0])).tolist() == [0.5, 0.5]
    """
    z = np.asarray(z, dtype=float)
    if not len(z):
        return z
    e = np.exp(z - z.max())
    return e / e.sum()


def load(path: Path = WEIGHTS) -> dict[str, Weights]:
    """The fitted models by question language ("ar", "en"), from qa/citerank.json; {} when the file
    is missing (the hand-weighted rank is used then). ValueError when the file does not fit `FEATURES`."""
    if not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {lang: Weights.from_dict(d) for lang, d in data.get("languages", {}).items()}


def length_feature(n_words: int) -> float:
    """The `length` signal: log(1 + words)."""
    return math.log1p(n_words)
