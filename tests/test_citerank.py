"""The learned citation rank (qa.citerank) and its fit (bench/fit_citerank.py): the design's gaps, the
conditional logit's gradient against finite differences, a fit that recovers a planted model, and the
retriever ranking by the committed weights with the real embedders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import check_grad

from bench import fit_citerank
from qa import citerank


def _raw(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(n, len(citerank.RAW)))


def test_design_appends_each_gapped_signal_minus_the_questions_best():
    raw = _raw(5, np.random.default_rng(0))
    x = citerank.design(raw)
    assert x.shape == (5, len(citerank.FEATURES))
    for j, name in enumerate(citerank.GAPPED):
        col = raw[:, citerank.RAW.index(name)]
        np.testing.assert_allclose(x[:, len(citerank.RAW) + j], col - col.max())
    assert citerank.design(np.empty((0, len(citerank.RAW)))).shape == (0, len(citerank.FEATURES))


def test_softmax_sums_to_one_and_keeps_the_order():
    p = citerank.softmax(np.array([2.0, -1.0, 0.5, 3.0]))
    assert p.sum() == pytest.approx(1.0)
    assert np.argsort(p).tolist() == [1, 2, 0, 3]
    assert citerank.softmax(np.array([1000.0, 0.0])).tolist() == [1.0, 0.0]  # no overflow


def test_the_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    groups = []
    for _ in range(6):
        x = citerank.design(_raw(7, rng))
        pos = np.zeros(7, bool)
        pos[rng.integers(7, size=2)] = True  # one or two sentences hold the gold
        groups.append((x, pos))
    coef = rng.normal(size=len(citerank.FEATURES))
    err = check_grad(
        lambda c: fit_citerank.loss_and_grad(c, groups, 0.3)[0],
        lambda c: fit_citerank.loss_and_grad(c, groups, 0.3)[1],
        coef,
    )
    assert err < 1e-4 * np.sqrt(len(coef))


def _planted_rows(n_questions: int, coef_raw: np.ndarray, rng: np.random.Generator) -> list[dict]:
    """Questions whose gold sentence is drawn from the softmax of a known linear model of the raw signals."""
    rows = []
    for _ in range(n_questions):
        raw = _raw(int(rng.integers(4, 12)), rng)
        gold = rng.choice(len(raw), p=citerank.softmax(raw @ coef_raw))
        rows.append(
            {"lang": "ar", "labels": [int(j == gold) for j in range(len(raw))], "features": raw.tolist()}
        )
    return rows


def test_the_fit_recovers_a_planted_model():
    rng = np.random.default_rng(2)
    coef_raw = np.zeros(len(citerank.RAW))
    coef_raw[citerank.RAW.index("sim")] = 3.0
    coef_raw[citerank.RAW.index("misfit")] = -2.0
    train, test = _planted_rows(1500, coef_raw, rng), _planted_rows(800, coef_raw, rng)
    w = fit_citerank.fit_language(train, 0.01, "planted")
    learned = fit_citerank.first_right(test, w)
    oracle = sum(r["labels"][int(np.argmax(np.asarray(r["features"]) @ coef_raw))] for r in test)
    assert learned >= oracle - 0.03 * len(test)  # as good as the true model, up to sampling noise
    effective = w.coef / w.scale  # per raw unit
    sim, misfit = citerank.RAW.index("sim"), citerank.RAW.index("misfit")
    assert effective[sim] + effective[len(citerank.RAW) + citerank.GAPPED.index("sim")] == pytest.approx(
        3.0, rel=0.25
    )
    assert effective[misfit] == pytest.approx(-2.0, rel=0.25)


def test_weights_fitted_on_other_features_are_refused(tmp_path):
    w = citerank.Weights(
        np.zeros(len(citerank.FEATURES)), np.ones(len(citerank.FEATURES)), np.ones(len(citerank.FEATURES))
    )
    d = w.to_dict()
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"languages": {"ar": d}}))
    assert citerank.load(path)["ar"].coef.tolist() == [1.0] * len(citerank.FEATURES)
    d["features"] = d["features"][:-1]
    path.write_text(json.dumps({"languages": {"ar": d}}))
    with pytest.raises(ValueError, match="refit"):
        citerank.load(path)
    assert citerank.load(tmp_path / "missing.json") == {}


def test_a_learned_rank_fitted_on_other_features_is_one_sentence(fast_seeded, tmp_path):
    """Fast lane: the retriever turns an unusable weights file into a `ModelError` and changes nothing."""
    from qa.errors import ModelError

    path = tmp_path / "old.json"
    path.write_text(
        json.dumps({"languages": {"ar": {"features": ["sim"], "mean": [0], "scale": [1], "coef": [1]}}})
    )
    qa = fast_seeded
    before = qa.retriever.retrieve("ماذا نفى الكرملين؟")
    qa.retriever.settings = qa.settings.model_copy(
        update={"cite_ranker": "learned", "cite_ranker_path": path}
    )
    with pytest.raises(ModelError, match="cannot be used") as err:
        qa.retriever.retrieve("ماذا نفى الكرملين؟")
    assert "\n" not in str(err.value)
    qa.retriever.settings = qa.settings
    assert qa.retriever.retrieve("ماذا نفى الكرملين؟").evidence == before.evidence
