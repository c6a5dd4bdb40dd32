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
