"""The loss table: where the gold answer is lost between retrieval and the quoted citations.

`python -m eval losses QUESTIONS [--part report] [--index DIR] [--variant NAME:KEY=VALUE,...]` asks
every answerable question of a set with the quoted answer only (no LLM call), and files each under
the first stage that lost its gold span, in pipeline order:

- `abstained`: the quote abstained (a false abstention);
- `cited`: no loss, the gold span lies inside the cited sentences;
- `passage`: no retrieved passage (the top `k` chunks the evidence comes from) holds the gold span;
- `two_sentences`: the gold span is spread over two sentences (or more) and they are not all cited;
- `not_evidence`: its passage was retrieved, but its sentence is not among the first
  `qa.reading.READER_EVIDENCE` evidence sentences (the most the reader is ever shown);
- `not_cited`: its sentence is among those, but not cited.

Beside the table: citation recall (the share filed `cited`) and ALCE-style citation precision
(Gao et al. 2023, "Enabling LLMs to generate text with citations": the share of cited sentences
that hold or support the answer), here in two forms without an entailment model: `precision`,
cited sentences that hold part of the gold span (strict), and `precision_support`, which also
counts a cited sentence right before a cited one that holds it (the sentence naming the subject
of «وأشار إلى أنّ…»). Rates get Wilson intervals on the effective count over articles, means a
bootstrap over articles (eval/stats.py). Variants (`--variant`) are settings overrides asked on the
same index, so before and after come from one run and are compared paired (`eval.stats`).

The calibration set is split into three parts by a hash of the article id (`calib_part`): `fit`,
`certify` and `report`, about a third each, so that a rule fitted on one part is certified on
another and reported on the third; this module measures on `report` only.

Writes losses.json (per question and the tables) and losses.md. Leaves out: the answer itself
(qa.retrieve's citation rank, qa.answer's choice), the runs with the reader (eval.runner) and
rendering beyond one Markdown table.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from eval import runner, stats
from eval.questions import SPLIT, Question, QuestionSet, part_of
from qa.answer import redundancy
from qa.errors import InputError
from qa.reading import READER_EVIDENCE

STAGES = ("cited", "abstained", "passage", "two_sentences", "not_evidence", "not_cited")
PARTS = SPLIT


def calib_part(article: str) -> str:
    """The calibration-set part an article belongs to: `eval.questions.part_of`, the one split
    (sha256 of the article id mod 3), shared with the calibration of "checked" (eval.calibrators).

    Example: calib_part("xquadc_00_Super_Bowl_50") in PARTS
    """
    return part_of(article)


def _unit(article: str, salt: str) -> float:
    """A number in [0, 1) fixed by the article id (sha256 of `salt:id`), for choosing subsets."""
    return int(hashlib.sha256(f"{salt}:{article}".encode()).hexdigest(), 16) / 2**256


def only_part(qs: QuestionSet, part: str, *, fraction: float = 1.0) -> QuestionSet:
    """The questions and article files of one calibration-set part (`calib_part`), or of the fixed
    share `fraction` of its articles (chosen by another hash of the id: the same articles every
    time, whatever their results), for when the whole part is too slow to index."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}")

    def kept(article: str) -> bool:
        return calib_part(article) == part and _unit(article, "subset") < fraction

    keep = [q for q in qs.questions if q.doc and kept(Path(q.doc).stem)]
    paths = [p for p in qs.doc_paths if kept(p.stem)]
    name = f"{qs.name}-{part}" + ("" if fraction >= 1 else f"-{fraction:g}")
    return QuestionSet(keep, qs.problems, paths, {}, name)


def only_articles(qs: QuestionSet, n: int) -> QuestionSet:
    """The questions of the first `n` articles (in the set's order) and those articles: a small slice."""
    paths = qs.doc_paths[:n]
    names = {p.name for p in paths}
    keep = [q for q in qs.questions if q.doc in names]
    return QuestionSet(keep, qs.problems, paths, {}, f"{qs.name}-first{n}")


def _covered(gold: tuple[str, int, int], evidence: list, cited: list) -> bool:
    """The gold span lies inside the cited sentences: they reach from its start to its end, and
    every evidence sentence it touches is cited (the space between two sentences is in neither)."""
    doc, start, end = gold
    touching = [c for c in cited if c[0] == doc and c[1] < end and start < c[2]]
    if not touching or min(c[1] for c in touching) > start or max(c[2] for c in touching) < end:
        return False
    return all(e in cited for e in evidence if e[0] == doc and e[1] < end and start < e[2])


def classify(
    gold: tuple[str, int, int],
    hits: list[tuple[str, int, int]],
    evidence: list[tuple[str, int, int]],
    cited: list[tuple[str, int, int]],
    *,
    abstained: bool,
    depth: int = READER_EVIDENCE,
) -> dict:
    """Where one gold span `(doc, start, end)` is lost, from the retrieved chunks' spans `hits`, the
    evidence sentences in rank order `evidence` and the cited sentences `cited` (all `(doc, start,
    end)`). Returns {"stage": one of `STAGES`, "rank": 1-based rank of the first evidence sentence
    holding part of the gold (None if none), "sentences": how many evidence sentences it spans,
    "precision": cited sentences holding part of it / cited (None without citations),
    "precision_support": the same, also counting a cited sentence that ends right before a cited one
    holding it (only whitespace between them is not checked: the next sentence starts after it)}.

    Example: classify(("d", 5, 8), [("d", 0, 20)], [("d", 0, 10)], [("d", 0, 10)],
    abstained=False)["stage"] == "cited"
    """
    doc, start, end = gold
    holds = [i for i, (d, a, b) in enumerate(evidence) if d == doc and a < end and start < b]
    rank = holds[0] + 1 if holds else None
    holding = [c for c in cited if c[0] == doc and c[1] < end and start < c[2]]
    precision = support = None
    if cited:
        precision = len(holding) / len(cited)
        starts = sorted(c[1] for c in holding)
        ahead = [c for c in cited if c not in holding and any(c[2] <= s for s in starts[:1])]
        # a cited sentence right before the first one holding the answer: no other sentence between
        ahead = [c for c in ahead if not any(c[2] <= e[1] < starts[0] for e in evidence if e[0] == doc)]
        support = (len(holding) + len(ahead)) / len(cited)
    out = {"rank": rank, "sentences": len(holds), "precision": precision, "precision_support": support}
    if abstained:
        return {**out, "stage": "abstained", "precision": None, "precision_support": None}
    if _covered(gold, evidence, cited):
        return {**out, "stage": "cited"}
    if not any(d == doc and a < end and start < b for d, a, b in hits):
        return {**out, "stage": "passage"}
    if len(holds) > 1:
        return {**out, "stage": "two_sentences"}
    if rank is None or rank > depth:
        return {**out, "stage": "not_evidence"}
    return {**out, "stage": "not_cited"}


# A cited sentence that holds the gold answer's words and shares at least this share of its words
# with the sentence the gold span lies in (Jaccard, qa.answer.redundancy) is a copy of it elsewhere in
# the article (ARCD merged articles that occur twice): the reader sees the answer in it, so it counts
# as citing the gold sentence. Measured on the dev set: all 4 answers lost to the near-copy cut were such copies.
COPY = 0.8


def _as_gold_sentence(cited: list, gold: tuple[str, int, int], evidence: list, texts: dict) -> list:
    """`cited` with each copy of the gold's sentence (`COPY`) replaced by that sentence's span."""
    doc, start, end = gold
    words = texts.get(doc, "")[start:end]
    home = [e for e in evidence if e[0] == doc and e[1] < end and start < e[2]]
    if len(home) != 1 or not words:
        return cited
    home_text = texts[doc][home[0][1] : home[0][2]]
    out = []
    for c in cited:
        text = texts.get(c[0], "")[c[1] : c[2]]
        out.append(home[0] if c != home[0] and words in text and redundancy(text, home_text) >= COPY else c)
    return list(dict.fromkeys(out))


def ask(ctx, questions: list[Question], *, progress: bool = True) -> list[dict]:
    """Each answerable question with a gold span, asked with the quote only (short answer off),
    classified (`classify`): one record per question with its id, lang, source, article and stage."""
    from tqdm import tqdm

    assistant = ctx.assistant
    settings = assistant.settings
    out = []
    for q in tqdm(questions, desc="asking (quote only)", unit="q", disable=not progress):
        if q.unanswerable:
            continue
        gold, _ = runner.gold_spans(q, ctx.texts)
        if not gold:
            continue
        retrieval = assistant.retriever.retrieve(q.question, k=settings.k)
        answer = assistant.answer_retrieval(retrieval, question=q.question, mode="extractive", k=settings.k)
        hits = [(h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in retrieval.hits]
        ranked = sorted(retrieval.evidence, key=lambda e: e.cite_score, reverse=True)  # as cited
        evidence = [(e.doc_id, e.start, e.end) for e in ranked]
        cited = _as_gold_sentence(
            [(c.doc, c.start, c.end) for c in answer.citations], gold[0], evidence, ctx.texts
        )
        row = classify(gold[0], hits, evidence, cited, abstained=answer.abstained)
        out.append(
            {
                "id": q.id,
                "lang": q.lang,
                "source": str(q.extra.get("source") or "-"),
                "doc": q.doc,
                "gold": list(gold[0]),
                "cited": [list(c) for c in cited],
                "n_cited": len(cited),
                "quote_ms": answer.timings_ms.get("total", answer.timings_ms.get("retrieve")),
                "evidence_ms": retrieval.timings_ms.get("evidence"),
                **row,
            }
        )
    return out


def table(records: list[dict]) -> list[dict]:
    """Rows per (language, source), per language and overall: n, each stage's share (the `cited` one
    with its interval), precision (both forms) with intervals, mean sentences cited."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        for key in ((r["lang"], r["source"]), (r["lang"], "all"), ("all", "all")):
            groups.setdefault(key, []).append(r)
    rows = []
    for (lang, source), recs in sorted(groups.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        docs = [r["doc"] for r in recs]
        row = {"lang": lang, "source": source, "n": len(recs)}
        for stage in STAGES:
            row[stage] = sum(r["stage"] == stage for r in recs)
        row["recall"] = stats.summary([float(r["stage"] == "cited") for r in recs], kind="rate", groups=docs)
        for name in ("precision", "precision_support"):
            row[name] = stats.summary([r[name] for r in recs], kind="mean", groups=docs)
        row["cited_per_answer"] = sum(r["n_cited"] for r in recs) / len(recs)
        rows.append(row)
    return rows


def paired(before: list[dict], after: list[dict]) -> dict:
    """After − before on the same questions: recall (McNemar and the article bootstrap) and strict
    precision (paired bootstrap over articles), as `eval.stats` gives them."""
    by_id = {r["id"]: r for r in before}
    pairs = [(by_id[r["id"]], r) for r in after if r["id"] in by_id]
    a = [float(x["stage"] == "cited") for x, _ in pairs]
    b = [float(y["stage"] == "cited") for _, y in pairs]
    docs = [x["doc"] for x, _ in pairs]
    out = {
        "n": len(pairs),
        "recall_mcnemar": stats.mcnemar([bool(v) for v in a], [bool(v) for v in b]),
        "recall_diff": stats.paired_bootstrap(a, b, groups=docs),
    }
    both = [(x["precision"], y["precision"], x["doc"]) for x, y in pairs]
    both = [t for t in both if t[0] is not None and t[1] is not None]
    out["precision_diff"] = stats.paired_bootstrap(
        [t[0] for t in both], [t[1] for t in both], groups=[t[2] for t in both]
    )
    return out


def _cell(c: dict) -> str:
    if c["value"] is None:
        return "–"
    return f"{c['value']:.2f} [{c['low']:.2f}, {c['high']:.2f}]"


def to_markdown(rows: list[dict], title: str) -> str:
    """One Markdown table: a row per language and source, each stage's count, recall and precision."""
    head = (
        "| questions | n | cited (recall) | passage not retrieved | two sentences | not among evidence "
        "| evidence, not cited | abstained | precision | precision (with support) | cited per answer |"
    )
    lines = [f"**{title}**", "", head, "|" + "---|" * 11]
    for r in rows:
        name = "all" if r["lang"] == "all" else f"{r['lang']} {r['source']}"
        lines.append(
            f"| {name} | {r['n']} | {r['cited']} ({_cell(r['recall'])}) | {r['passage']} | "
            f"{r['two_sentences']} | {r['not_evidence']} | {r['not_cited']} | {r['abstained']} | "
            f"{_cell(r['precision'])} | {_cell(r['precision_support'])} | {r['cited_per_answer']:.2f} |"
        )
    return "\n".join(lines)


def main(
    qs: QuestionSet,
    *,
    out: Path,
    variants: dict[str, dict],
    docs: list[Path] = (),
    index_dir: Path | None = None,
    progress: bool = True,
) -> dict:
    """Index the set's articles and `docs` once (or reuse `index_dir`), ask it under each variant (name -> settings
    overrides; the first is the baseline the others are compared with), write losses.json/md."""
    out = Path(out)
    result: dict = {"questions": qs.name, "variants": {}, "paired": {}}
    first = None
    base = {"short_answer": "off"}
    names = list(variants)
    with runner.prepared(
        qs, docs=list(docs), out=out, settings_overrides=base, index_dir=index_dir, progress=progress
    ) as ctx:
        assistant = ctx.assistant
        shipped = assistant.settings
        if assistant.retriever.second is not None:  # each variant asks the same questions: embed them once
            assistant.retriever.second = runner.QueryMemo(assistant.retriever.second)
        for name in names:
            try:
                settings = type(shipped)(**{**shipped.model_dump(), **variants[name]})
            except ValueError as exc:
                raise InputError(f"Invalid setting in variant {name!r}: {exc.errors()[0]['msg']}.") from None
            assistant.settings = settings
            assistant.retriever.settings = settings
            t0 = time.perf_counter()
            records = ask(ctx, qs.questions, progress=progress)
            result["variants"][name] = {
                "overrides": variants[name],
                "seconds": round(time.perf_counter() - t0, 1),
                "table": table(records),
                "records": records,
            }
            if first is None:
                first = records
            else:
                result["paired"][name] = paired(first, records)
        assistant.settings = assistant.retriever.settings = shipped
    (out / "losses.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    md = [f"# Where the gold answer is lost: {qs.name}", ""]
    for name, v in result["variants"].items():
        md += [to_markdown(v["table"], f"{name} {v['overrides'] or ''}".strip()), ""]
    for name, p in result["paired"].items():
        d, m, pr = p["recall_diff"], p["recall_mcnemar"], p["precision_diff"]
        md.append(
            f"- {name} − {names[0]} (n={p['n']}): recall {_diff(d)} (McNemar p = {m['p_value']:.3g}), "
            f"precision {_diff(pr)}"
        )
    (out / "losses.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return result


def _diff(d: dict) -> str:
    if d.get("diff") is None or d.get("low") is None:
        return "–" if d.get("diff") is None else f"{d['diff']:+.3f}"
    return f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
