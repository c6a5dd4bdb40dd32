"""Calibrate the dictionary witness (qa/glossary.py) on the dev benchmark's parallel renderings.

`python -m bench.calibrate_glossary`: for every pair of eval/calibration/rendering-pairs.jsonl (the
parallel English/Arabic answers and questions of XQuAD and MLQA, and shuffled and same-article
wrong pairs; `python -m bench.calibrate_verify build` makes it), the witness's day-or-month
contradiction and its gloss share, and the rendering check with and without them: how many true
renderings each rule accepts and how many wrong ones, per level (span, sentence), with Wilson 95%
intervals. Writes eval/calibration/glossary.json. Needs `dict-freedict-ara-eng` (`make setup`).
Leaves out: the reader's own renderings (their right/wrong labels come from an evaluation run).
"""

from __future__ import annotations

import json
from collections import defaultdict

from bench.calibrate_verify import CAL, NEGATIVE_KINDS, PAIRS, _auc, _read_jsonl
from eval.stats import wilson
from qa import glossary
from qa import verify as qverify
from qa.config import Settings
from qa.embeddings import load_embedder

OUT = CAL / "glossary.json"


def _share(k: int, n: int) -> dict:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None, "ci95": [low, high]}


def main() -> None:
    if not glossary.available():
        raise SystemExit("dict-freedict-ara-eng is not installed (make setup installs it).")
    settings = Settings()
    embedder = load_embedder(settings.embedding_model, settings.models_dir, settings.threads)
    rows = _read_jsonl(PAIRS)
    for r in rows:
        w = glossary.witness(r["rendering"], r["source"])
        r["contradicted"] = bool(w.contradicted)
        r["gloss_share"] = w.share
        r["similarity"] = qverify.rendering_similarity(r["rendering"], r["source"], embedder=embedder)
    threshold = qverify.RENDERING_THRESHOLD
    rules = {
        "similarity": lambda r: r["similarity"] >= threshold,
        "similarity, no contradicted day or month (shipped)": lambda r: (
            r["similarity"] >= threshold and not r["contradicted"]
        ),
        "similarity, and some gloss found": lambda r: (
            r["similarity"] >= threshold and not r["contradicted"] and (r["gloss_share"] or 0) > 0
        ),
    }
    out: dict = {"threshold": threshold, "pairs": len(rows), "levels": {}}
    for level in ("span", "sentence"):
        part = [r for r in rows if r["level"] == level]
        groups = defaultdict(list)
        for r in part:
            groups["positives" if r["label"] == "positive" else f"negatives_{r['kind']}"].append(r)
        judged_pos = [r["gloss_share"] for r in groups["positives"] if r["gloss_share"] is not None]
        judged_neg = [
            r["gloss_share"] for r in part if r["label"] == "negative" and r["gloss_share"] is not None
        ]
        level_out = {
            "gloss_share_auc": _auc(judged_pos, judged_neg),
            "judged_positives": len(judged_pos),
            "contradicted": {
                g: _share(sum(r["contradicted"] for r in rs), len(rs)) for g, rs in groups.items()
            },
            "rules": {},
        }
        for name, accept in rules.items():
            level_out["rules"][name] = {
                g: _share(sum(bool(accept(r)) for r in rs), len(rs)) for g, rs in sorted(groups.items())
            }
        out["levels"][level] = level_out
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for level, data in out["levels"].items():
        print(
            f"{level}: gloss share AUC {data['gloss_share_auc']} ({data['judged_positives']} positives judged)"
        )
        for name, groups in data["rules"].items():
            cells = ", ".join(
                f"{g} {c['k']}/{c['n']} [{c['ci95'][0]:.1%}, {c['ci95'][1]:.1%}]" for g, c in groups.items()
            )
            print(f"  {name}: {cells}")
    print(f"kinds of wrong pairs: {NEGATIVE_KINDS}; written to {OUT}")


if __name__ == "__main__":
    main()
