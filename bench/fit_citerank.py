"""Fit the learned citation rank (qa.citerank) on the calibration set's `fit` part, choose its
regularisation on the dev set, and write qa/citerank.json.

Two steps, so the slow one (retrieval over an index) runs once:

    # 1. every answerable question's evidence sentences: their raw signals and which holds the gold
    python -m bench.fit_citerank dump ../shared/eval-data/arabic-qa-calib --part fit \\
        --index .qa/idx/calib-fit --out eval/calibration/citerank-fit.jsonl
    python -m bench.fit_citerank dump ../shared/eval-data/arabic-qa-dev \\
        --index .qa/idx/dev --out eval/calibration/citerank-dev.jsonl
    # 2. fit one model per question language; the L2 strength is the one with the most dev questions
    #    whose answer's sentence ranks first
    python -m bench.fit_citerank fit eval/calibration/citerank-fit.jsonl \\
        --dev eval/calibration/citerank-dev.jsonl --out qa/citerank.json

The model is a conditional logit (qa.citerank): per question, the softmax of the linear scores over
its evidence sentences; the loss is minus the log of the chance given to the sentences holding the
gold span, plus `l2` times the squared weights, minimised by scipy's L-BFGS with the exact
gradient. Questions whose gold is in no evidence sentence (the passage was not retrieved) teach
nothing and are left out. Features are standardised on the fitting rows (mean and scale are saved
with the weights). The dump rows are small (eleven numbers a sentence) and committed, so the fit can be
redone without the embedders.

Leaves out: measuring the effect on citations (that is `python -m eval losses … --variant
learned:cite_ranker=learned`, on the report part), nonlinear models.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from qa import citerank

# The L2 strengths tried (per standardised weight), smallest to largest; the choice is the one with
# the most dev questions ranked right (ties: the larger, the simpler model).
L2_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)


def dump(args) -> int:
    """Retrieve each answerable question (quote settings, no model call) and write one JSON line
    per question: id, lang, source, doc, the evidence sentences' raw signals (`features`, rows as
    qa.citerank.RAW), `labels` (1 when the sentence holds part of the gold span) and `rule` (the
    shipped citation rank, `Evidence.cite_score`, the baseline)."""
    from eval import losses, runner
    from eval.questions import load

    qs = load(args.questions)
    if args.part:
        qs = losses.only_part(qs, args.part, fraction=args.fraction)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with (
        runner.prepared(
            qs,
            docs=[],
            out=Path(args.work),
            settings_overrides={"short_answer": "off"},
            index_dir=args.index,
        ) as ctx,
        out.open("w", encoding="utf-8") as f,
    ):
        from tqdm import tqdm

        retriever, k = ctx.assistant.retriever, ctx.assistant.settings.k
        for q in tqdm(qs.questions, desc="retrieving", unit="q"):
            if q.unanswerable:
                continue
            gold, _ = runner.gold_spans(q, ctx.texts)
            if not gold:
                continue
            doc, start, end = gold[0]
            evidence = retriever.retrieve(q.question, k=k).evidence
            labels = [int(e.doc_id == doc and e.start < end and start < e.end) for e in evidence]
            row = {
                "id": q.id,
                "lang": q.lang,
                "source": str(q.extra.get("source") or "-"),
                "doc": q.doc,
                "labels": labels,
                "features": [[round(v, 5) for v in e.features] for e in evidence],
                "rule": [round(e.cite_score, 5) for e in evidence],  # the shipped rank: the baseline
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    print(f"{n} questions -> {out}")
    return 0


def read_rows(path: Path) -> list[dict]:
    """The dump's questions that can teach: a gold sentence among the evidence."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if any(r["labels"])]


def _groups(rows: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(citerank.design(np.asarray(r["features"], float)), np.asarray(r["labels"], bool)) for r in rows]


def loss_and_grad(coef: np.ndarray, groups, l2: float) -> tuple[float, np.ndarray]:
    """The conditional-logit loss of standardised `groups` (list of (x (n, d), positives (n,) bool))
    at `coef` (d,), summed over questions, plus `l2`·|coef|², and its gradient (d,)."""
    total, grad = l2 * float(coef @ coef), 2 * l2 * coef
    for x, pos in groups:
        z = x @ coef
        p = citerank.softmax(z)
        p_pos = p[pos].sum()
        total -= float(np.log(max(p_pos, 1e-300)))
        q = np.where(pos, p, 0.0) / max(p_pos, 1e-300)  # the positives' share of the chance
        grad -= x.T @ (q - p)
    return total, grad


def fit_language(rows: list[dict], l2: float, source: str) -> citerank.Weights:
    """One language's `Weights` fitted on `rows` (the dump's questions) with L2 strength `l2`."""
    groups = _groups(rows)
    stacked = np.vstack([x for x, _ in groups])
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    std = [((x - mean) / scale, pos) for x, pos in groups]
    res = minimize(
        loss_and_grad, np.zeros(len(citerank.FEATURES)), args=(std, l2), jac=True, method="L-BFGS-B"
    )
    return citerank.Weights(mean, scale, res.x, source)


def first_right(rows: list[dict], w: citerank.Weights) -> int:
    """How many of `rows`' questions have a gold-holding sentence ranked first by `w`."""
    return sum(bool(pos[int(np.argmax(citerank.scores(x, w)))]) for x, pos in _groups(rows))


def rule_first_right(rows: list[dict]) -> int:
    """The same count for the hand-weighted rank the dump ran with (`rule`, qa.retrieve's
    `Evidence.cite_score`, recorded by `dump`): the baseline the learned rank must beat."""
    return sum(bool(r["labels"][int(np.argmax(r["rule"]))]) for r in rows)


def fit(args) -> int:
    """Fit per language over `L2_GRID`, pick by dev, write the weights with what chose them."""
    train, dev = read_rows(args.rows), read_rows(args.dev)
    out = {"method": "conditional logit, bench/fit_citerank.py", "languages": {}, "choice": {}}
    for lang in sorted({r["lang"] for r in train}):
        tr = [r for r in train if r["lang"] == lang]
        dv = [r for r in dev if r["lang"] == lang]
        tried = []
        for l2 in L2_GRID:
            w = fit_language(tr, l2, "")
            tried.append((first_right(dv, w), l2, first_right(tr, w)))
        best = max(tried, key=lambda t: (t[0], t[1]))
        source = f"fitted on {Path(args.rows).name} ({len(tr)} {lang} questions), l2 {best[1]} chosen on {Path(args.dev).name}"
        w = fit_language(tr, best[1], source)
        out["languages"][lang] = w.to_dict()
        rule = {"dev_first_rule": rule_first_right(dv), "fit_first_rule": rule_first_right(tr)}
        out["choice"][lang] = {
            "l2": best[1],
            "grid": [{"l2": l2, "dev_first": d, "fit_first": f} for d, l2, f in tried],
            "dev_questions": len(dv),
            "fit_questions": len(tr),
            **rule,
        }
        print(
            f"{lang}: l2={best[1]}  dev first {best[0]}/{len(dv)} (rule {rule['dev_first_rule']})"
            f"  fit first {best[2]}/{len(tr)} (rule {rule['fit_first_rule']})"
        )
        for name, c in zip(citerank.FEATURES, w.coef):
            print(f"   {name:16s} {c:+.3f}")
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`dump` or `fit`; see the module docstring."""
    p = argparse.ArgumentParser(prog="python -m bench.fit_citerank", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="retrieve a question set and write each question's sentence signals")
    d.add_argument("questions", type=Path)
    d.add_argument("--part", choices=["fit", "certify", "report"])
    d.add_argument("--fraction", type=float, default=1.0)
    d.add_argument("--index", type=Path, required=True, help="the index folder (made when missing)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--work", type=Path, default=Path("runs/citerank"), help="scratch folder")
    f = sub.add_parser("fit", help="fit qa/citerank.json from dumps")
    f.add_argument("rows", type=Path)
    f.add_argument("--dev", type=Path, required=True)
    f.add_argument("--out", type=Path, default=citerank.WEIGHTS)
    args = p.parse_args(argv)
    return dump(args) if args.command == "dump" else fit(args)


if __name__ == "__main__":
    sys.exit(main())
