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

from bench.calibrate_wordcheck import DATA, split
from bench.common import fresh_assistant, percentiles, save
from eval.stats import wilson
from qa.translate import TranslationStore, judge, translate_sentence


def sample(limit: int, half: str = "report") -> list[dict]:
    """`limit` rows of `half` ("report" or "calibrate"), evenly spaced in file order, each with an
    `id` (title:paragraph:index)."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    report = [r for r in rows if split(r["title"]) == half]
    step = max(1, len(report) // limit)
    chosen = report[::step][:limit]
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
    call), setting `checked`, `reason`, `share` and `source_share`; `checked_when_made` keeps the
    verdict of the code that made it."""
    assistant = fresh_assistant()
    for r in rows:
        r.setdefault("checked_when_made", r["checked"])
        t = judge(r["rendering"], r["ar"], "en", services=assistant) if r["rendering"] else None
        r["checked"] = bool(t and t.verified)
        r["reason"] = t.note if t else r["reason"]
        r["share"] = t.check.share if t and t.check else None
        r["source_share"] = t.check.source_share if t and t.check else None


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
    args = parser.parse_args(argv)
    if args.summary:
        result = summary(args.out, args.summary)
        print(json.dumps({k: v for k, v in result.items() if k != "checked_rows"}, indent=1))
        print(save("wordcheck-model", result))
        return
    translate(sample(args.limit, args.half), args.out)


if __name__ == "__main__":
    main()
