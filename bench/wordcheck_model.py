"""The local model's own English, through the shipped checks, for a person to label right or wrong.

`python -m bench.wordcheck_model [--limit N] [--out FILE]`: an even sample of N (160) Arabic
sentences of the report half of ../shared/eval-data/arabic-qa-calib/parallel-sentences.jsonl
(`bench.calibrate_wordcheck.split`: never tuned on), each translated into English by the
configured LLM and judged by `qa.translate.translate_sentence`, exactly as "Translate cited
sentences" does for a reader. One JSON line per sentence in `--out`
(runs/model-translations.jsonl), written as it is made, so a stopped run resumes where it was.

`python -m bench.wordcheck_model --summary LABELS`: with the person's labels
(eval/calibration/model-translations.jsonl: `id`, `label` "right"/"wrong", `reason`), how many
renderings the verifier labels checked and how many of those are wrong, with Wilson 95% intervals.
Writes bench/results/wordcheck-model.json.

Leaves out: the labels themselves (read by a person against the professional reference, never by a
model or a similarity), corruptions and the verifier's calibration (bench.calibrate_wordcheck).
Set QA_LLM_TIMEOUT_S=600 on a busy machine so no reply is cut.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.calibrate_wordcheck import DATA, TARGET_UNRELATED, split
from bench.common import fresh_assistant, percentiles, save
from eval.stats import wilson
from qa import text as qtext
from qa import verify as qverify
from qa import wordcheck
from qa.translate import TranslationStore, judge, translate_sentence, unsupported_names

FIT = Path(__file__).resolve().parent.parent / "eval" / "calibration" / "wordcheck-model-fit.json"


def sample(limit: int, half: str = "report") -> list[dict]:
    """`limit` rows of `half` ("report" or "calibrate"), evenly spaced in file order, each with an
    `id` (title:paragraph:index)."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    report = [r for r in rows if split(r["title"]) == half]
    # Spread over the whole half (a step of len // limit was 1 for 160 of 302: the first 160, 11 of
    # its 19 articles, which is what eval/calibration/model-translations.jsonl holds).
    chosen = [report[i * len(report) // limit] for i in range(min(limit, len(report)))]
    for r in chosen:
        r["id"] = f"{r['title']}:{r['paragraph']}:{r['index']}"
    return chosen


def translate(rows: list[dict], out: Path) -> None:
    """Translate and check each row not yet in `out`, appending one line per sentence."""
    done = set()
    if out.exists():
        done = {
            json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines() if line.strip()
        }
    todo = [r for r in rows if r["id"] not in done]
    print(f"{len(done)} done, {len(todo)} to translate", flush=True)
    if not todo:
        return
    assistant = fresh_assistant()
    store = TranslationStore(Path(tempfile.mkdtemp(prefix="qa-model-en-")) / "t.sqlite")
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(todo, 1):
        t0 = time.perf_counter()
        t = translate_sentence(r["ar"], "en", services=assistant, store=store)
        check = t.check
        line = {
            "id": r["id"],
            "ar": r["ar"],
            "reference": r["en"],
            "rendering": t.text or t.rough,
            "checked": t.verified,
            "reason": t.note,
            "share": check.share if check else None,
            "unsupported": [w.text for w in check.words if w.kind != "function" and not w.supported]
            if check
            else [],
            "ms": round((time.perf_counter() - t0) * 1000),
        }
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        print(
            f"[{i}/{len(todo)}] {'CHECKED' if t.verified else 'refused'} {line['ms']} ms: {line['rendering']}",
            flush=True,
        )


def rejudge(rows: list[dict]) -> None:
    """Judge each recorded rendering again with today's checks (`qa.translate.judge`, no model
    call), setting `checked` and `reason`, and what a bar fit needs: `other_ok` (the similarity and
    name checks), `rules_ok` (the word check's rules with both share bars at 0), `share` and
    `source_share`. `checked_when_made` keeps the verdict of the code that made it."""
    assistant = fresh_assistant()
    for r in rows:
        r.setdefault("checked_when_made", r["checked"])
        text = r["rendering"]
        if not text or qtext.detect_language(text) != "en":
            r.update(checked=False, other_ok=False, rules_ok=False, share=None, source_share=None)
            continue
        t = judge(text, r["ar"], "en", services=assistant)
        c = wordcheck.check(text, r["ar"], min_share=0.0, min_source_share=0.0)
        similar = qverify.check_rendering(text, r["ar"], embedder=assistant.embedder).ok
        invented = unsupported_names(text, r["ar"], embedder=assistant.embedder) if similar else []
        r.update(
            checked=t.verified,
            reason=t.note,
            other_ok=similar and not invented,
            rules_ok=c.ok,
            share=c.share,
            source_share=c.source_share,
        )


def passes(r: dict, share: float, source_share: float) -> bool:
    """Would a rendering (`rejudge`'s fields) be checked with these two bars?"""
    return bool(
        r["other_ok"]
        and r["rules_ok"]
        and r["share"] is not None
        and r["share"] >= share - 1e-9
        and (r["source_share"] is None or r["source_share"] >= source_share - 1e-9)
    )


def fit(model_rows: list[dict], reference_rows: list[dict]) -> dict:
    """The two bars of a sentence translation's word check, fitted on the calibration half: among
    the pairs (English share, source share) of a grid (steps of 0.01) at which the references'
    unrelated-word corruptions are still refused ≥ `TARGET_UNRELATED` and none of the model's own
    renderings a person labelled wrong is checked, the pair that lets the most faithful references
    pass (ties: the lower bars). `reference_rows`: bench.calibrate_wordcheck's kept rows (`--rows`),
    calibration half only; `model_rows`: `rejudge`d and labelled. Returns the pair and its counts."""
    refs = [r for r in reference_rows if r["half"] == "calibrate"]
    unrelated = [r["checked"]["unrelated_word"] for r in refs if "unrelated_word" in r["checked"]]

    def ref_pass(res: dict, share: float, source_share: float) -> bool:
        s = res["strict"] / res["n"] if res["n"] else None
        ss = res.get("source_share")
        return bool(
            res["rules_ok"]
            and s is not None
            and s >= share - 1e-9
            and (ss is None or ss >= source_share - 1e-9)
        )

    best = None
    grid = [round(x * 0.01, 2) for x in range(0, 101)]
    for share in grid:
        if sum(not ref_pass(u, share, 0.0) for u in unrelated) < TARGET_UNRELATED * len(unrelated):
            continue
        for source_share in grid:
            wrong = sum(passes(r, share, source_share) and r["label"] == "wrong" for r in model_rows)
            if wrong:
                continue
            faithful = sum(ref_pass(r["faithful"], share, source_share) for r in refs)
            key = (faithful, -share, -source_share)
            if best is None or key > best[0]:
                right = sum(passes(r, share, source_share) and r["label"] == "right" for r in model_rows)
                best = (
                    key,
                    {
                        "share": share,
                        "source_share": source_share,
                        "faithful_pass": faithful,
                        "references": len(refs),
                        "model_right_checked": right,
                        "model_right": sum(r["label"] == "right" for r in model_rows),
                        "model_renderings": len(model_rows),
                    },
                )
            break  # a higher source bar passes fewer faithful references
    if best is None:
        raise SystemExit("no pair of bars refuses every wrong rendering of the calibration half")
    return best[1]


def load(path: Path) -> dict[str, dict]:
    """The JSON lines of `path` by their `id`."""
    return {
        json.loads(x)["id"]: json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()
    }


def summary(runs: Path, labels: Path) -> dict:
    """Checked count and wrong among checked (Wilson 95%) from the run, judged again with today's
    checks, and the person's labels.

    Raises SystemExit (one sentence) when a rendering has no label."""
    made, label = load(runs), load(labels)
    missing = [i for i in made if i not in label]
    if missing:
        raise SystemExit(f"{len(missing)} renderings have no label in {labels}, e.g. {missing[0]}.")
    rows = [{**made[i], **label[i]} for i in made]
    rejudge(rows)
    checked = [r for r in rows if r["checked"]]
    wrong_checked = sum(r["label"] == "wrong" for r in checked)
    wrong = sum(r["label"] == "wrong" for r in rows)
    refused_right = sum(r["label"] == "right" and not r["checked"] for r in rows)

    def rate(k: int, n: int) -> dict:
        return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": list(wilson(k, n))}

    return {
        "renderings": len(rows),
        "wrong_by_reading": rate(wrong, len(rows)),
        "checked": rate(len(checked), len(rows)),
        "checked_when_made": rate(sum(r["checked_when_made"] for r in rows), len(rows)),
        "wrong_among_checked_when_made": rate(
            sum(r["checked_when_made"] and r["label"] == "wrong" for r in rows),
            sum(r["checked_when_made"] for r in rows),
        ),
        "wrong_among_checked": rate(wrong_checked, len(checked)),
        "right_but_refused": rate(refused_right, len(rows) - wrong),
        "ms": percentiles([r["ms"] for r in rows]),
        "checked_rows": [
            {k: r[k] for k in ("id", "rendering", "reference", "label", "reason")} for r in checked
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=160, help="report-half sentences to translate")
    parser.add_argument("--half", choices=("report", "calibrate"), default="report")
    parser.add_argument("--out", type=Path, default=Path("runs/model-translations.jsonl"))
    parser.add_argument("--summary", type=Path, help="labels file: summarise instead of translating")
    parser.add_argument("--fit", type=Path, help="labels file of a calibration-half run: fit the bars")
    parser.add_argument("--rows", type=Path, help="with --fit: bench.calibrate_wordcheck's --rows file")
    args = parser.parse_args(argv)
    if args.fit:
        made, label = load(args.out), load(args.fit)
        rows = [{**made[i], **label[i]} for i in made if i in label]
        rejudge(rows)
        result = fit(rows, json.loads(args.rows.read_text(encoding="utf-8")))
        print(json.dumps(result, indent=1))
        FIT.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    if args.summary:
        result = summary(args.out, args.summary)
        print(json.dumps({k: v for k, v in result.items() if k != "checked_rows"}, indent=1))
        print(save("wordcheck-model", result))
        return
    translate(sample(args.limit, args.half), args.out)


if __name__ == "__main__":
    main()
