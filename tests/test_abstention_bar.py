"""The quote's certified abstention bar (eval.abstention) against scipy, planted distributions and a
run folder read through the real command line.

Pure functions and small JSON files, no model: the fast lane.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from eval import abstention
from eval.__main__ import main
from eval.questions import part_of
from qa import answer as qanswer
from qa import confidence as qconfidence
from qa.config import Settings


def test_planted_scores_certify_the_highest_bar_scipy_allows():
    """1,000 answerable questions scoring 0.000, 0.001, …, 0.999: a bar b refuses round(1000 b) of
    them. The loosest-first sequence passes while binom.cdf(refused, 1000, 0.05) <= 0.1, found here
    by a plain loop over scipy; the certified bar is the last grid bar before the first failure."""
    scores = [i / 1000 for i in range(1000)]
    expected = None
    for bar in abstention.GRID:
        refused = sum(s < bar for s in scores)
        if binom.cdf(refused, 1000, 0.05) > 0.1:
            break
        expected = (bar, refused)
    cert = abstention.certify_bar(scores)
    assert (cert.threshold, cert.refused) == expected
    assert cert.p_value == pytest.approx(binom.cdf(expected[1], 1000, 0.05))
    assert cert.refused / cert.n < cert.upper <= 0.05


def test_too_few_answerable_questions_certify_nothing_and_say_why():
    cert = abstention.certify_bar([0.9] * 44)
    assert cert.threshold is None and "45" in cert.reason
    # 0.95**45 < 0.1: 45 pass with none refused; the bar just above 0.9 would refuse all of them.
    assert abstention.certify_bar([0.9] * 45).threshold == 0.9


def test_a_bar_that_fails_stops_the_sequence():
    """Three answerable questions at 0.01 fail the test from the bar just above them on, for n = 50
    (binom.cdf(3, 50, 0.05) = 0.76), though no other question scores below 0.95: the bar certified
    is the last one below them, never the looser-looking 0.95."""
    cert = abstention.certify_bar([0.01] * 3 + [0.95] * 47)
    assert (cert.threshold, cert.refused) == (0.01, 0)


def test_the_guarantee_holds_on_planted_distributions():
    """Answerable scores ~ Beta(5, 3): the true refusal rate at a bar is the Beta's CDF. Over 400
    simulated parts of 300 questions, the certified bar refuses 5% or more of the population in at
    most delta of them, and it is usually close to the population's 5% quantile."""
    from scipy.stats import beta

    rng = np.random.default_rng(7)
    q05 = beta.ppf(0.05, 5, 3)
    broken, bars = 0, []
    for _ in range(400):
        cert = abstention.certify_bar(list(rng.beta(5, 3, 300)))
        if cert.threshold is None:
            continue
        bars.append(cert.threshold)
        broken += beta.cdf(cert.threshold, 5, 3) >= 0.05
    assert broken / 400 <= 0.1
    assert len(bars) == 400 and np.median(bars) > q05 - 0.08


def _run(folder, rows, *, held=False):
    folder.mkdir()
    with (folder / "results.jsonl").open("w", encoding="utf-8") as f:
        for i, (doc, lang, score) in enumerate(rows):
            weak = score < 0.3
            answer = {"abstained": weak, "note": abstention.WEAK_NOTE if weak else None}
            rec = {"id": f"q{i}-{lang}", "lang": lang, "doc": doc, "best_score": score, "unanswerable": held}
            f.write(json.dumps({**rec, "answer": answer}) + "\n")


def test_the_command_reads_runs_and_writes_the_certificate(tmp_path, monkeypatch, capsys):
    """Real run-folder files through `python -m eval certify-abstention`: the fit and certify parts
    certify, the report part reports, and the held-out runs count as unanswerable."""
    docs = [f"doc{i}.txt" for i in range(60)]
    report = [d for d in docs if part_of(d) == "report"]
    rows = [
        (d, lang, 0.5 + (i % 10) / 40) for i, d in enumerate(docs) for lang in ("ar", "en") for _ in range(3)
    ]
    _run(tmp_path / "ans", rows)
    _run(tmp_path / "held", [(d, "ar", 0.2) for d in report] + [(d, "en", 0.45) for d in report], held=True)
    monkeypatch.setattr(abstention, "OUT", tmp_path / "out")
    calibrations = tmp_path / "calibrations.json"
    calibrations.write_text(json.dumps({"calibrations": {"k": {"kept": True}}}), encoding="utf-8")
    monkeypatch.setattr(abstention, "CALIBRATIONS", calibrations)
    assert main(["certify-abstention", str(tmp_path / "ans"), "--held", str(tmp_path / "held")]) == 0
    written = json.loads(calibrations.read_text(encoding="utf-8"))
    assert written["calibrations"] == {"k": {"kept": True}}  # the short answer's calibrations kept
    bar = qconfidence.abstention_bar("ar", path=calibrations)
    assert bar is not None and bar.threshold == written["abstention"]["bars"]["ar"]["threshold"]
    entry = json.loads((tmp_path / "out" / "abstention-certified.json").read_text(encoding="utf-8"))
    ar = entry["languages"]["ar"]
    lowest = min(0.5 + (i % 10) / 40 for i, d in enumerate(docs) if part_of(d) != "report")
    assert ar["certificate"]["threshold"] <= lowest  # nothing answerable refused: the lowest score caps it
    assert ar["certified"]["report"]["unanswerable_abstained"]["k"] == len(report)
    assert (tmp_path / "out" / "abstention-certified.png").exists()
    assert "bar" in capsys.readouterr().out


def test_a_folder_that_is_not_a_run_gets_one_sentence(tmp_path, capsys):
    assert main(["certify-abstention", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is it a run folder?" in err and "Traceback" not in err


def test_the_note_says_what_a_certified_bar_promises_and_a_higher_bar_promises_nothing(tmp_path):
    """The abstention's note carries the guarantee only when the bar in use is at or below the
    certified one (a lower bar refuses no more answerable questions); a higher bar promises nothing."""
    calibrations = tmp_path / "calibrations.json"
    bars = {"ar": {"threshold": 0.44, "n": 346, "refused": 11, "alpha": 0.05, "delta": 0.1}}
    calibrations.write_text(json.dumps({"abstention": {"bars": bars}}), encoding="utf-8")
    certified = Settings(calibrations_path=calibrations, abstain_threshold_ar=0.44)
    note = qanswer.weak_note("ar", certified)
    assert note.startswith(qanswer.WEAK_NOTE) and "fewer than 5 in 100" in note and "346 questions" in note
    assert (
        qanswer.weak_note("ar", Settings(calibrations_path=calibrations, abstain_threshold_ar=0.5))
        == qanswer.WEAK_NOTE
    )
    assert qanswer.weak_note("en", certified) == qanswer.WEAK_NOTE  # no English bar certified
    lower = Settings(calibrations_path=calibrations, abstain_threshold_ar=0.43)
    assert qanswer.weak_note("ar", lower) == note


# ---------------------------------------------------------------------------------------------
# The adjusted score: the best evidence score corrected by the retrieval's other signals


def _signals(best: float, sim2: float) -> dict:
    """A results line's `retrieval_signals` whose best sentence scores `best` with second-embedder
    similarity `sim2` (the other signals 0)."""
    features = [0.0] * len(qconfidence.EVIDENCE_SIGNALS)
    features[qconfidence.EVIDENCE_SIGNALS.index("sim2")] = sim2
    return {"evidence": [[best, *features]], "hits": [[1.0, 0.3, 0.4, 0.0, sim2]]}


def test_the_inputs_name_every_signal_and_nothing_retrieved_gives_none():
    inputs = qconfidence.abstention_inputs(_signals(0.6, 0.8))
    assert set(inputs) == {"best", *qconfidence.ABSTENTION_INPUTS}
    assert (
        inputs["best"] == 0.6
        and inputs["gap"] == 0.6
        and inputs["sim2"] == 0.8
        and inputs["hit_second"] == 0.8
    )
    assert qconfidence.abstention_inputs({"evidence": [], "hits": []}) == {}
    assert (
        qconfidence.abstention_inputs({"evidence": [[0.6]], "hits": [[1, 0, 0, 0, 0]]}) == {}
    )  # no features


def test_a_fitted_adjustment_recovers_a_planted_logistic_model():
    """Answerable with probability sigmoid(20 best + 10 sim2 - 19): the adjustment is the
    regression's weights over the best score's, so sim2's weight comes back near 10 / 20."""
    rng = np.random.default_rng(7)
    best, sim2 = rng.uniform(0.3, 0.8, 20000), rng.uniform(0.6, 0.9, 20000)
    answerable = rng.random(20000) < 1 / (1 + np.exp(-(20 * best + 10 * sim2 - 19)))
    rows = [
        {"id": str(i), "inputs": qconfidence.abstention_inputs(_signals(b, s)), "unanswerable": not a}
        for i, (b, s, a) in enumerate(zip(best, sim2, answerable, strict=True))
    ]
    adjustment = abstention.fit_adjustment(rows, ("sim2",), c=100.0)
    assert adjustment.weights["sim2"] == pytest.approx(0.5, abs=0.05)
    assert adjustment.center["sim2"] == pytest.approx(sim2.mean(), abs=1e-4)
    one = rows[0]["inputs"]
    assert adjustment.score(one) == pytest.approx(one["best"] + 0.5 * (one["sim2"] - sim2.mean()), abs=0.01)
    assert adjustment.score({"best": 0.5}) is None  # an input it reads is missing


def test_an_adjustment_refuses_unknown_signals_and_rows_without_them():
    rows = [{"id": "a", "inputs": {}, "unanswerable": False, "score": 0.5}]
    with pytest.raises(ValueError, match="No retrieval signal is called nonsense"):
        abstention.fit_adjustment(rows, ("nonsense",))
    with pytest.raises(ValueError, match="make the runs again"):
        abstention.fit_adjustment(rows, ("sim2",))


def _signal_run(folder, rows, *, held=False):
    folder.mkdir()
    with (folder / "results.jsonl").open("w", encoding="utf-8") as f:
        for i, (doc, lang, best, sim2) in enumerate(rows):
            answer = {"abstained": False, "note": None}
            rec = {"id": f"q{i}-{lang}", "lang": lang, "doc": doc, "best_score": best, "unanswerable": held}
            f.write(json.dumps({**rec, "answer": answer, "retrieval_signals": _signals(best, sim2)}) + "\n")


def test_the_command_with_an_adjustment_fits_on_the_fit_part_and_certifies_on_the_certify_part(
    tmp_path, monkeypatch, capsys
):
    """Held-out questions score as high as answerable ones on the best score but lower on sim2: the
    adjustment is fitted on the fit part, the bar certified on the certify part's answerable
    questions alone, the fit part's held-out questions report nothing, and the page's bar carries
    the adjustment."""
    rng = np.random.default_rng(3)
    docs = [f"doc{i}.txt" for i in range(90)]
    rows = [
        (d, lang, rng.uniform(0.4, 0.8), rng.uniform(0.78, 0.9))
        for d in docs
        for lang in ("ar", "en")
        for _ in range(4)
    ]
    held = [
        (d, lang, rng.uniform(0.3, 0.6), rng.uniform(0.6, 0.72))
        for d in docs
        for lang in ("ar", "en")
        for _ in range(2)
    ]
    _signal_run(tmp_path / "ans", rows)
    _signal_run(tmp_path / "held", held, held=True)
    monkeypatch.setattr(abstention, "OUT", tmp_path / "out")
    calibrations = tmp_path / "calibrations.json"
    monkeypatch.setattr(abstention, "CALIBRATIONS", calibrations)
    argv = ["certify-abstention", str(tmp_path / "ans"), "--held", str(tmp_path / "held"), "--adjust", "sim2"]
    assert main(argv) == 0
    entry = json.loads((tmp_path / "out" / "abstention-certified.json").read_text(encoding="utf-8"))
    ar = entry["languages"]["ar"]
    assert ar["certified_on"] == ["certify"] and ar["adjustment"]["weights"]["sim2"] > 0
    assert ar["certificate"]["n"] == sum(lang == "ar" and part_of(d) == "certify" for d, lang, *_ in rows)
    not_fit = sum(lang == "ar" and part_of(d) != "fit" for d, lang, *_ in held)
    assert ar["certified"]["held_out_all_parts"]["n"] == not_fit
    # sim2 separates the held-out questions that the best score cannot: most of them are refused.
    assert ar["certified"]["report"]["unanswerable_abstained"]["rate"] > 0.8
    bar = qconfidence.abstention_bar("ar", path=calibrations)
    assert bar.adjustment is not None and bar.adjustment.weights == ar["adjustment"]["weights"]


def test_an_adjustment_fitted_on_other_runs_leaves_the_fit_and_certify_parts_to_certify(
    tmp_path, monkeypatch
):
    rng = np.random.default_rng(5)
    docs = [f"doc{i}.txt" for i in range(60)]
    other = [f"dev{i}.txt" for i in range(20)]
    for name, names, held in (
        ("ans", docs, False),
        ("held", docs, True),
        ("dev", other, False),
        ("devheld", other, True),
    ):
        low, high = (0.6, 0.72) if held else (0.78, 0.9)
        best = (0.3, 0.6) if held else (0.4, 0.8)
        rows = [(d, "ar", rng.uniform(*best), rng.uniform(low, high)) for d in names for _ in range(3)]
        _signal_run(tmp_path / name, rows, held=held)
    monkeypatch.setattr(abstention, "OUT", tmp_path / "out")
    monkeypatch.setattr(abstention, "CALIBRATIONS", tmp_path / "calibrations.json")
    argv = ["certify-abstention", str(tmp_path / "ans"), "--held", str(tmp_path / "held"), "--adjust", "sim2"]
    assert main([*argv, "--adjust-on", str(tmp_path / "dev"), str(tmp_path / "devheld")]) == 0
    ar = json.loads((tmp_path / "out" / "abstention-certified.json").read_text(encoding="utf-8"))[
        "languages"
    ]["ar"]
    assert ar["certified_on"] == ["fit", "certify"] and ar["adjustment"]["source"].startswith(
        "other runs: 120 "
    )
    assert ar["certificate"]["n"] == 3 * sum(part_of(d) != "report" for d in docs)
    assert ar["certified"]["held_out_all_parts"]["n"] == 3 * len(docs)  # no held-out question fitted anything


def test_an_adjustment_asked_of_runs_without_signals_gets_one_sentence(tmp_path, capsys):
    docs = [f"doc{i}.txt" for i in range(30)]
    _run(tmp_path / "ans", [(d, "ar", 0.6) for d in docs])
    _run(tmp_path / "held", [(d, "ar", 0.3) for d in docs], held=True)
    assert (
        main(
            [
                "certify-abstention",
                str(tmp_path / "ans"),
                "--held",
                str(tmp_path / "held"),
                "--adjust",
                "sim2",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "make the runs again" in err and "Traceback" not in err


def test_the_quote_compares_the_adjusted_score_with_the_bar(tmp_path):
    """A retrieval whose best sentence scores 0.50, above the bar 0.46, with a second-embedder
    similarity 0.10 under the adjustment's centre: adjusted by 0.5 per unit, it scores 0.45, below the
    bar, and the quote abstains; with `abstain_adjusted` off it compares 0.50 and answers, and the
    note no longer promises what a bar certified on the adjusted score does."""
    from qa.types import Chunk, Evidence, Hit, Retrieval

    features = [0.0] * len(qconfidence.EVIDENCE_SIGNALS)
    features[qconfidence.EVIDENCE_SIGNALS.index("sim2")] = 0.7
    chunk = Chunk("c", "d.txt", 0, 0, 0, 10, "0123456789", ((0, 10),))
    evidence = Evidence("d.txt", "c", 0, 0, 10, "0123456789", 0.5, 0.4, 0.1, features=tuple(features))
    retrieval = Retrieval("q", "ar", (Hit(chunk, 1.0, 0.3, 0.4, 0.0, 0.7),), (evidence,), {})
    calibrations = tmp_path / "calibrations.json"
    bars = {"ar": {"threshold": 0.46, "n": 500, "refused": 10, "alpha": 0.05, "delta": 0.1}}
    adjustments = {"ar": {"weights": {"sim2": 0.5}, "center": {"sim2": 0.8}, "source": "test"}}
    calibrations.write_text(
        json.dumps({"abstention": {"bars": bars, "adjustments": adjustments}}), encoding="utf-8"
    )
    adjusted = Settings(calibrations_path=calibrations, abstain_threshold_ar=0.46)
    assert qconfidence.abstention_score(retrieval, adjusted) == pytest.approx(0.45)
    assert qanswer.is_weak(retrieval, adjusted)
    assert "fewer than 5 in 100" in qanswer.weak_note("ar", adjusted)
    plain = Settings(calibrations_path=calibrations, abstain_threshold_ar=0.46, abstain_adjusted=False)
    assert qconfidence.abstention_score(retrieval, plain) == 0.5
    assert not qanswer.is_weak(retrieval, plain)
    assert qanswer.weak_note("ar", plain) == qanswer.WEAK_NOTE


def test_an_adjustment_of_unknown_signals_leaves_no_bar_to_promise(tmp_path):
    """A calibrations file whose adjustment reads a signal this code does not compute is unreadable:
    no bar is certified (the bar was certified on a score the quote cannot reproduce)."""
    calibrations = tmp_path / "calibrations.json"
    bars = {"ar": {"threshold": 0.44, "n": 500, "refused": 10, "alpha": 0.05, "delta": 0.1}}
    adjustments = {"ar": {"weights": {"nonsense": 0.5}, "center": {"nonsense": 0.8}}}
    calibrations.write_text(
        json.dumps({"abstention": {"bars": bars, "adjustments": adjustments}}), encoding="utf-8"
    )
    assert qconfidence.abstention_bar("ar", path=calibrations) is None
