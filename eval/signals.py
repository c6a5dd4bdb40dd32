"""Labelled signals: one compact line per answered question, kept in git so calibration can be redone
without the model.

A run of the calibration set takes the reader 8-10 hours on 2 cores, spread over several sittings
(eval.runner's journal). What calibration needs from it is small: per question, the signals the
short-answer decision could use (`qa.confidence.features`), whether the reader's rules passed,
and the label. `extract` turns a run's journal (or results.jsonl) into those lines; `merge` adds
them to a committed file (eval/calibration/signals.jsonl), keyed by question id and the
calibration key (backend, model, reader prompt), so lines from another model or prompt never mix.

The label (issue 31): a short answer is wrong when its span has token F1 < 0.5 against every
Arabic gold and contains none, and (for an English rendering) its text likewise against every
English gold (eval.metrics.short_answer_wrong); a short answer to an unanswerable question is wrong.

Leaves out: fitting and certifying (eval.calibrators, eval.certify).
"""

from __future__ import annotations

import json
from pathlib import Path

from eval import metrics
from eval.questions import part_of
from qa import confidence as qconfidence
from qa.answer_checks import fits_question

SIGNALS = Path(__file__).resolve().parent / "calibration" / "signals.jsonl"


def row(rec: dict, *, key: str, code: str) -> dict | None:
    """The compact line of one journal/results record of our pipeline, or None when it has no answer
    (an error) or a reply of it was cut at the time cap. `shown`: a verified short answer was shown;
    which rows the calibration may label checked is `eval.calibrators.candidate`."""
    answer = rec.get("answer")
    if rec.get("system", "ours") != "ours" or not answer:
        return None
    # A reply cut at the time cap says nothing about the answer (it is missing for want of time): a
    # run stopped with SIGSTOP and resumed timed out every question in flight and after (2026-12-06).
    if answer.get("timeouts"):
        return None
    short = answer.get("short_answer")
    # The answer-type rule replayed as today's code has it: a span it now refuses is no short answer
    # (the run may predate a fix to it; qa.answer_checks, 2026-12-06: «في» was taken for a time word).
    if short and not fits_question(rec["question"], short["source"]["quote"]):
        short = None
    shown = bool(short and short["verified"] and not answer["abstained"])
    out = {
        "id": rec["id"],
        "lang": rec["lang"],
        "doc": rec.get("doc"),
        "part": part_of(rec.get("doc")),
        "source": rec.get("source"),
        "unanswerable": bool(rec.get("unanswerable")),
        "key": key,
        "code": code,
        "abstained": bool(answer["abstained"]),
        "has_short": bool(short),
        "shown": shown,
        "wrong": None,
        "span": short["source"]["quote"] if short else None,
        "text": short["text"] if short else None,
        "features": None,
    }
    if short:
        signals = answer.get("signals") or {}
        sentence = next((c["quote"] for c in answer["citations"] if c["n"] == short["source"]["n"]), "")
        out["features"] = {
            k: round(v, 5)
            for k, v in qconfidence.features(
                rec["question"], rec["lang"], signals, short["source"]["quote"], sentence
            ).items()
        }
        if rec.get("unanswerable"):
            out["wrong"] = True
        elif rec.get("gold_answers"):
            out["wrong"] = metrics.short_answer_wrong(short, list(rec["gold_answers"]))
    return out


def records(run: Path) -> tuple[str, list[dict]]:
    """(the code fingerprint the run was made with, its records) from a run folder: its journal
    (`journal.jsonl`, also mid-run: the configuration line skipped, a line cut by a stop dropped) or
    its results (code ""). Raises FileNotFoundError when the folder holds neither file."""
    journal, results = run / "journal.jsonl", run / "results.jsonl"
    path = journal if journal.exists() else results
    lines = path.read_text(encoding="utf-8").splitlines()
    code = ""
    if path == journal and lines:
        code = json.loads(lines[0]).get("journal", {}).get("code", "")
        lines = lines[1:]
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a stop
    return code, out


def extract(run: Path, *, key: str) -> list[dict]:
    """The compact lines of a run folder (`records`). `key` is the calibration key the run was made
    with (qa.confidence.calibration_key). Raises FileNotFoundError when the folder holds neither file.
    """
    code, recs = records(run)
    return [r for r in (row(rec, key=key, code=code) for rec in recs) if r is not None]


def load(path: Path = SIGNALS) -> list[dict]:
    """Every line of a signals file ([] when there is none)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def merge(rows: list[dict], path: Path = SIGNALS) -> tuple[int, int]:
    """Add `rows` to the signals file, a newer line replacing one with the same (key, id); written
    sorted so that the file's diff shows only what changed. Returns (added, replaced)."""
    kept = {(r["key"], r["id"]): r for r in load(path)}
    added = sum((r["key"], r["id"]) not in kept for r in rows)
    for r in rows:
        kept[(r["key"], r["id"])] = r
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for k in sorted(kept):
            f.write(json.dumps(kept[k], ensure_ascii=False, sort_keys=True) + "\n")
    return added, len(rows) - added
