"""Reports: report.md and report.html (plots embedded as base64 PNG) for one run, and the plots.

Plots (matplotlib, Agg backend): recall@k curves by question language for each system, the best
evidence score of answerable vs unanswerable questions with the abstention threshold, the
end-to-end latency histogram, the headline metrics side by side with their 95% intervals as error
bars, the risk–coverage curves of abstention and of the short answer's check with the shipped point
marked (eval/selective.py), and the calibration curve. A run whose replies hit the time cap, or
that shared the machine, says so at the top.
Leaves out: computing metrics (metrics.py) and comparing runs (compare.py).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs headless in CI
import matplotlib.pyplot as plt

from eval import metrics, stats

# Exact match is 0 by construction for answers that quote whole sentences: left out of the chart.
HEADLINE = tuple(m for m in metrics.SCORED if m != "em")
MAX_K = 10


# ---------------------------------------------------------------------------------------------
# Plots


def recall_plot(path: Path, records: dict[str, list[dict]]) -> None:
    """Share of answerable questions with a gold span in the top k passages, k = 1..10."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ks = list(range(1, MAX_K + 1))
    for system, recs in records.items():
        for lang, style in (("en", "-"), ("ar", "--")):
            ranked = [r for r in recs if r["lang"] == lang and r["scores"].get("hit@1") is not None]
            if not ranked:
                continue
            ys = [
                sum(1 for r in ranked if r["scores"]["rank"] and r["scores"]["rank"] <= k) / len(ranked)
                for k in ks
            ]
            ax.plot(ks, ys, style, marker="o", ms=3, label=f"{system} · {lang} (n={len(ranked)})")
    ax.set(
        xlabel="k (passages retrieved)", ylabel="recall@k (gold span retrieved)", ylim=(0, 1.02), xticks=ks
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Retrieval recall@k by question language")
    _save(fig, path)


def score_plot(path: Path, recs: list[dict], threshold: float) -> None:
    """Best evidence score (what abstention looks at) for answerable vs unanswerable questions."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups = {
        "answerable": [
            r["best_score"] for r in recs if not r["unanswerable"] and r["best_score"] is not None
        ],
        "unanswerable": [r["best_score"] for r in recs if r["unanswerable"] and r["best_score"] is not None],
    }
    values = [v for vs in groups.values() for v in vs] + [threshold]
    bins = [min(values) + i * (max(values) - min(values) + 1e-9) / 30 for i in range(31)]
    for (label, vs), color in zip(groups.items(), ("tab:blue", "tab:red")):
        if vs:
            ax.hist(vs, bins=bins, alpha=0.55, color=color, label=f"{label} (n={len(vs)})")
    ax.axvline(threshold, color="black", ls="--", label=f"abstention threshold {threshold:.3f}")
    ax.set(xlabel="best evidence score", ylabel="questions")
    ax.legend(fontsize=8)
    ax.set_title("Best evidence score: answerable vs unanswerable (ours)")
    _save(fig, path)


def latency_plot(path: Path, records: dict[str, list[dict]]) -> None:
    """End-to-end latency per question, per system."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for system, recs in records.items():
        ms = [r["answer"]["timings_ms"]["total"] for r in recs if r.get("answer")]
        if ms:
            ax.hist(ms, bins=30, alpha=0.55, label=f"{system} (p50 {metrics.percentile(ms, 50):.0f} ms)")
    ax.set(xlabel="end-to-end latency per question (ms)", ylabel="questions")
    ax.legend(fontsize=8)
    ax.set_title("Latency")
    _save(fig, path)


def metrics_plot(path: Path, systems: dict[str, dict]) -> None:
    """The headline metrics of every system, side by side, with 95% intervals as error bars."""
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / max(1, len(systems))
    for i, (system, summary) in enumerate(systems.items()):
        cells = [summary["overall"][m] for m in HEADLINE]
        values = [c["value"] or 0 for c in cells]
        # A bootstrap (BCa) interval need not hold its point estimate: an error bar is never negative.
        below = [max(0.0, c["value"] - c["low"]) if c.get("low") is not None else 0 for c in cells]
        above = [max(0.0, c["high"] - c["value"]) if c.get("high") is not None else 0 for c in cells]
        ax.bar(
            [x + i * width for x in range(len(HEADLINE))],
            values,
            width,
            yerr=[below, above],
            capsize=2,
            error_kw={"elinewidth": 0.8},
            label=system,
        )
    ax.set_xticks(
        [x + width * (len(systems) - 1) / 2 for x in range(len(HEADLINE))], HEADLINE, rotation=30, ha="right"
    )
    ax.set(ylim=(0, 1.05), ylabel="value")
    ax.legend(fontsize=8)
    ax.set_title(
        "Headline metrics with 95% intervals ("
        + ", ".join(sorted(metrics.LOWER_IS_BETTER))
        + ": lower is better)",
        fontsize=9,
    )
    _save(fig, path)


def risk_coverage_plot(path: Path, selective: dict) -> None:
    """Risk against coverage for each signal of abstention and of the short answer's check, the
    shipped decision marked with its risk's 95% interval."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    titles = {"abstention": "Abstention (all questions)", "short_answer": "Short answer shown as checked"}
    for ax, (name, part) in zip(axes, selective.items()):
        for label, c in part["curves"].items():
            # Each tie group's risk holds over the coverage it adds, as `selective.aurc` integrates it.
            xs = [0.0] + [p["coverage"] for p in c["points"]]
            ys = [c["points"][0]["risk"]] + [p["risk"] for p in c["points"]]
            ax.step(xs, ys, where="pre", lw=1.2, label=f"{label} (AURC {c['aurc']:.3f}, n={c['n']})")
        shipped = part["shipped"]
        if shipped["risk"] is not None:
            ax.errorbar(
                [shipped["coverage"]],
                [shipped["risk"]],
                yerr=[
                    [max(0.0, shipped["risk"] - shipped["risk_low"])],
                    [max(0.0, shipped["risk_high"] - shipped["risk"])],
                ],
                fmt="o",
                color="black",
                capsize=3,
                label=f"shipped: {shipped['answered']} of {shipped['n']} answered",
            )
        ax.set(xlabel="coverage (share answered)", ylabel="risk (share of answered that is wrong)")
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), title=titles.get(name, name))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def certified_plot(
    path: Path, curves: dict[str, list[tuple[float, float, int]]], bars: dict[str, dict]
) -> None:
    """The short answer's risk-coverage curve on the certification part, one per question language,
    with the promised bound (alpha) and the certified point with its (1 - delta) upper bound, or a
    note where nothing is certified (eval.calibrators, `python -m eval certify`)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colours = {"ar": "tab:blue", "en": "tab:orange"}
    alpha = next((b["alpha"] for b in bars.values()), 0.05)
    for lang, curve in curves.items():
        colour = colours.get(lang, "gray")
        bar = bars.get(lang, {})
        if curve:
            ax.step([c for c, _, _ in curve], [r for _, r, _ in curve], where="post", color=colour, lw=1.2,
                    label=f"{lang} questions (n={bar.get('n', '?')})")  # fmt: skip
        if bar.get("threshold") is not None:
            cov, risk = bar["accepted"] / bar["n"], bar["wrong"] / bar["accepted"]
            ax.errorbar([cov], [risk], yerr=[[0.0], [bar["upper"] - risk]], fmt="o", color=colour, capsize=3,
                        label=f"{lang} certified: {bar['accepted']} checked, {bar['wrong']} wrong")  # fmt: skip
        else:
            ax.plot([], [], " ", label=f"{lang}: nothing certified")
    ax.axhline(alpha, color="black", ls="--", lw=1, label=f"promise: fewer than {alpha:.0%} wrong")
    ax.set(xlabel="coverage (share of questions with a checked short answer)", ylabel="wrong among checked")
    ax.set(xlim=(0, 1.02), ylim=(0, 0.6), title="Checked short answers: certification part")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def calibration_plot(
    path: Path, answerable: list[float], unanswerable: list[float], best: dict, current: float
) -> None:
    """Score histograms, the balanced-accuracy curve, the chosen and the current threshold."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.hist(answerable, bins=25, alpha=0.5, color="tab:blue", label=f"answerable (n={len(answerable)})")
    ax.hist(unanswerable, bins=25, alpha=0.5, color="tab:red", label=f"unanswerable (n={len(unanswerable)})")
    ax.set(xlabel="best evidence score", ylabel="questions")
    twin = ax.twinx()
    xs, ys = zip(*best["curve"])
    twin.plot(xs, ys, color="black", lw=1, label="balanced accuracy")
    twin.set(ylabel="balanced accuracy", ylim=(0, 1.02))
    ax.axvline(best["threshold"], color="green", ls="--", label=f"best {best['threshold']:.3f}")
    ax.axvline(current, color="gray", ls=":", label=f"current {current:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Abstention calibration: best balanced accuracy {best['balanced_accuracy']:.3f}")
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# The report as blocks, rendered to Markdown and HTML


def cell_text(cell: dict | None, digits: int = 3) -> str:
    """A metric cell as text: value, its 95% interval and its count, e.g. "0.630 [0.442, 0.788] n=27";
    "–" when nothing applies. The one format of the report, `eval run`'s table and the quality table."""
    if not cell or cell.get("value") is None:
        return "–"
    f = f".{digits}f"
    interval = f" [{cell['low']:{f}}, {cell['high']:{f}}]" if cell.get("low") is not None else ""
    return f"{cell['value']:{f}}{interval} n={cell['n']}"


def _ms(cell: dict) -> str:
    if cell.get("value") is None:
        return "–"
    interval = f" [{cell['low']:.0f}, {cell['high']:.0f}]" if cell.get("low") is not None else ""
    return f"{cell['value']:.0f}{interval}"


def _metric_table(groups: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    head = ["metric", *groups]
    rows = [[m, *(cell_text(g.get(m)) for g in groups.values())] for m in metrics.SCORED]
    rows.append(
        ["cross-language, not scored", *(str(g["cross_language_not_scored"]) for g in groups.values())]
    )
    rows.append(
        [
            "quote ≠ text at offsets",
            *(f"{g['quote_mismatches']} / {g['citations_checked']}" for g in groups.values()),
        ]
    )
    rows.append(["errors", *(str(g["errors"]) for g in groups.values())])
    return head, rows


def worst(recs: list[dict], n: int = 10) -> list[dict]:
    """Wrong answers first: answered unanswerables, then answerables by citation recall, F1, MRR."""

    def badness(r: dict) -> tuple:
        s = r["scores"]
        if r["unanswerable"]:
            return (0 if s.get("abstain_unanswerable") == 0 else 9, -(r["best_score"] or 0))
        return (1, s.get("citation_recall") or 0, s.get("f1") or 0, s.get("mrr") or 0)

    bad = [r for r in recs if r.get("answer") and not _right(r)]
    return sorted(bad, key=badness)[:n]


def _right(r: dict) -> bool:
    s = r["scores"]
    if r["unanswerable"]:
        return s.get("abstain_unanswerable") == 1
    return not r["answer"]["abstained"] and bool(s.get("citation_recall"))


def blocks(result: dict, records: dict[str, list[dict]]) -> list[tuple]:
    """The report's content: ("h", level, text), ("p", text), ("table", head, rows), ("img", file, alt), ("pre", text)."""
    run, systems = result["run"], result["systems"]
    out: list[tuple] = [("h", 1, f"Evaluation: {run['questions']} ({run['n_questions']} questions)")]
    out += [("p", f"**Warning.** {w}") for w in result.get("warnings", [])]
    out += [
        (
            "p",
            f"Mode `{run['mode']}`, k={run['k']}, commit {run['commit']}, {run['date']}; "
            f"{len(run['documents'])} documents indexed in {run['ingest_s']} s, questions asked in {run['ask_s']} s; "
            f"peak memory {run['peak_memory_mb']} MB. Settings: "
            + ", ".join(f"{k}={v}" for k, v in run["settings"].items())
            + ". Systems: "
            + ", ".join(systems)
            + " (naive = LangChain tutorial RAG, 1000/200 character chunks, Chroma top-k, whole chunks cited; "
            "bm25 = BM25 over the same chunks; naive reuses our question vector, so its latency leaves out embedding).",
        ),
        ("h", 2, "Metrics"),
        (
            "p",
            "Each value is a mean over the questions it applies to, with its 95% interval in brackets "
            "(Wilson for rates; a bootstrap for graded means, resampling articles when the set has at least "
            f"{stats.MIN_CLUSTERS}); n is that count. `–`: applies to none.",
        ),
    ]
    head, rows = _metric_table({s: v["overall"] for s, v in systems.items()})
    out.append(("table", head, rows))
    out.append(("h", 3, "Definitions"))
    out.append(("table", ["metric", "definition"], [[k, v] for k, v in metrics.DEFINITIONS.items()]))
    out.append(
        (
            "p",
            "Spans overlap when they share a character of the same document. Gold spans are the evidence strings "
            "(or gold answer spans) located in the indexed text. Answers are scored only against gold answers "
            "written in the answer's own language (its dominant script); when there is none the answer is counted "
            "as *cross-language, not scored* instead of scoring 0. Quote check: every citation (and closest "
            "passage) must equal the document text at its offsets; any mismatch is a bug.",
        )
    )
    out.append(("img", "metrics.png", "headline metrics"))
    for title, key in (
        ("By question language", "by_lang"),
        ("By category", "by_category"),
        ("By source", "by_source"),
    ):
        ours = systems.get("ours", {}).get(key)
        if not ours:
            continue
        out.append(("h", 2, title))
        for group in ours:
            out.append(("h", 3, group))
            head, rows = _metric_table(
                {s: v[key][group] for s, v in systems.items() if group in v.get(key, {})}
            )
            out.append(("table", head, rows))
    if result.get("selective"):
        out += _selective_blocks(result["selective"])
    out.append(("h", 2, "Retrieval"))
    out.append(("img", "recall_at_k.png", "recall@k by language"))
    out.append(("h", 2, "Abstention"))
    out.append(("img", "scores.png", "score distributions"))
    out.append(("h", 2, "Latency"))
    lat_rows = []
    for s, v in systems.items():
        for stage, q in v["latency_ms"].items():
            lat_rows.append([s, stage, _ms(q["p50"]), _ms(q["p95"]), f"{q['max']:.0f}", str(q["n"])])
    head = ["system", "stage", "p50 ms [95%]", "p95 ms [95%]", "max ms", "n"]
    out.append(("table", head, lat_rows))
    out.append(("p", f"Peak resident memory of the evaluation process: {run['peak_memory_mb']} MB."))
    out += _conditions_blocks(result)
    out.append(("img", "latency.png", "latency histogram"))
    out.append(("h", 2, "Worst questions (ours)"))
    for r in worst(records.get("ours", [])):
        a = r["answer"]
        gold = " | ".join(r["gold_answers"]) or ("(unanswerable)" if r["unanswerable"] else "–")
        lines = [
            f"[{r['id']}] ({r['lang']}, {', '.join(r['categories'])}) {r['question']}",
            f"gold: {gold}",
            f"answer ({'abstained' if a['abstained'] else 'answered'}, best score {_num(r['best_score'])}): {_cut(a['answer'], 300)}",
            f"scores: rank {r['scores'].get('rank')}, citation recall {_num(r['scores'].get('citation_recall'))}, F1 {_num(r['scores'].get('f1'))}",
        ]
        for c in a["citations"] or a["closest"]:
            tag = f"[{c['n']}]" if a["citations"] else "closest"
            lines.append(
                f"  {tag} {c['doc']} [{c['start']}:{c['end']}] score {c['score']}: {_cut(c['quote'], 200)}"
            )
        out.append(("pre", "\n".join(lines)))
    if result.get("problems"):
        out.append(("h", 2, "Problems while loading the questions"))
        out.append(("pre", "\n".join(result["problems"])))
    return out


def _selective_blocks(selective: dict) -> list[tuple]:
    rows = []
    for name, part in selective.items():
        shipped = part["shipped"]
        rows.append([name, "shipped decision", str(part["n"]), "", *_point(shipped)])
        for lang, point in part["shipped_by_lang"].items():
            rows.append([name, f"shipped, {lang} questions", str(point["n"]), "", *_point(point)])
        for label, c in part["curves"].items():
            e = f"{c['e_aurc']:.3f}" if c.get("e_aurc") is not None else "–"
            rows.append(
                [
                    name,
                    label,
                    str(c["n"]),
                    f"{c['aurc']:.3f} / {e} / {c['error_rate']:.3f}",
                    *_point(c["shipped"]),
                ]
            )
    return [
        ("h", 2, "Risk–coverage"),
        (
            "p",
            "Answering the questions whose signal is at least a threshold gives a coverage (share answered) "
            "and a risk (share of those wrong); AURC is the area under that curve (lower is better), E-AURC "
            "the same less a perfect ordering's (0 is perfect: compare signals by it, since AURC depends on "
            "the error rate of the questions a signal covers). Abstention: wrong if answered = unanswerable, "
            "or the passage ranked first misses the gold span. Short answer: over questions given one, wrong = "
            "unanswerable or matching no gold (F1 < 0.5, no gold inside). Coverage and risk are those of the "
            "shipped decision (on the questions the signal covers), with the risk's Wilson 95% interval.",
        ),
        (
            "table",
            [
                "decision",
                "signal",
                "n",
                "AURC / E-AURC / error rate",
                "shipped coverage",
                "shipped risk [95%]",
            ],
            rows,
        ),
        ("img", "risk_coverage.png", "risk-coverage curves"),
    ]


def _point(p: dict) -> list[str]:
    if p["risk"] is None:
        return [f"{p['coverage'] or 0:.3f}", "–"]
    return [
        f"{p['coverage']:.3f} ({p['answered']})",
        f"{p['risk']:.3f} [{p['risk_low']:.3f}, {p['risk_high']:.3f}]",
    ]


def _conditions_blocks(result: dict) -> list[tuple]:
    run = result["run"]
    m = run.get("machine") or {}
    t = result.get("timeouts") or {}
    start, end = m.get("start") or {}, m.get("end") or {}
    rows = [
        ["commit", f"{run.get('commit')}{' (with uncommitted changes)' if run.get('dirty') else ''}"],
        ["CPUs (usable)", f"{start.get('cpus')} ({start.get('cpus_usable')})"],
        ["load average at start / end (1, 5, 15 min)", f"{start.get('load_avg')} / {end.get('load_avg')}"],
        [
            "other processes' CPU while running",
            f"{m.get('other_cpu_s')} s, {m.get('other_cores')} cores on average",
        ],
        ["wall time", f"{m.get('wall_s')} s"],
        ["replies cut at the time cap", f"{t.get('answers', 0)} (cap {t.get('cap_s')} s)"],
    ]
    for name, files in (run.get("models") or {}).items():
        if name == "packages":
            rows.append(["packages", ", ".join(f"{k} {v}" for k, v in files.items() if v)])
        else:
            rows.append(
                [f"model {name}", ", ".join(f"{k or 'file'} {v[:12]}" for k, v in files.items() if v)]
            )
    return [
        ("h", 2, "Run conditions"),
        ("table", ["what", "value"], rows),
        ("p", "All settings are in metrics.json (`run.all_settings`), secrets left out."),
    ]


def _num(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def to_markdown(blocks_: list[tuple]) -> str:
    lines = []
    for b in blocks_:
        if b[0] == "h":
            lines += ["#" * b[1] + " " + b[2], ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "table":
            lines.append("| " + " | ".join(b[1]) + " |")
            lines.append("|" + "---|" * len(b[1]))
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b[2]]
            lines.append("")
        elif b[0] == "img":
            lines += [f"![{b[2]}]({b[1]})", ""]
        elif b[0] == "pre":
            lines += ["```", b[1], "```", ""]
    return "\n".join(lines)


def to_html(blocks_: list[tuple], folder: Path) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;unicode-bidi:plaintext}img{max-width:100%}"
        "</style></head><body>"
    ]
    for b in blocks_:
        if b[0] == "h":
            parts.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            parts.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b[1])
            body = "".join(
                "<tr>" + "".join(f"<td dir='auto'>{e(c)}</td>" for c in row) + "</tr>" for row in b[2]
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif b[0] == "img":
            path = folder / b[1]
            if path.is_file():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(f"<p><img alt='{e(b[2])}' src='data:image/png;base64,{data}'></p>")
        elif b[0] == "pre":
            parts.append(f"<pre dir='auto'>{e(b[1])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(
    out: Path, result: dict, records: dict[str, list[dict]], *, texts: dict[str, str] | None = None
) -> None:
    """Write the plots, report.md and report.html into `out`."""
    recall_plot(out / "recall_at_k.png", records)
    ours = records.get("ours", [])
    score_plot(out / "scores.png", ours, result["run"]["settings"]["abstain_threshold"])
    latency_plot(out / "latency.png", records)
    metrics_plot(out / "metrics.png", result["systems"])
    if result.get("selective"):
        risk_coverage_plot(out / "risk_coverage.png", result["selective"])
    content = blocks(result, records)
    (out / "report.md").write_text(to_markdown(content), encoding="utf-8")
    (out / "report.html").write_text(to_html(content, out), encoding="utf-8")
