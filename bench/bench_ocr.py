"""OCR of scans made from text we have (issue 22): character error rate, and what OCR costs retrieval and the reader.

The report half of the dev benchmark's articles (there is no named report split in eval/: its
calibrations split articles into two halves by `zlib.crc32(article) % 2`, bench/calibrate_verify.py
and `folds()` in bench/calibrate_abstention.py, and use each half in turn as the held-out one; this
benchmark takes half 1, `REPORT_FOLD`, 8 articles and 119 questions) is typeset with bench/scans.py
(Noto Naskh Arabic 12 pt on A4, right to left through raqm, with Noto Serif for the characters Naskh
has no glyph for: Latin letters, parentheses, quotes, hyphens, 2.7% of the half's characters, which
Naskh alone prints as empty boxes (`scans.with_fallback`); DejaVu Sans when Naskh is missing, which
the result records as `font`; `missing_glyphs` counts what neither font draws) and written as
image-only PDFs (Pillow stores each page as JPEG, as scanners do), under these conditions, the OCR text repaired by `--repairs` (qa.ocr.REPAIRS; default the shipped
ones, `--repairs` alone for none):

- "clean": the article's .txt itself (no OCR), the reference for retrieval and the reader;
- "300dpi", "150dpi": the typeset pages as they are, at that resolution;
- "300dpi-degraded", "150dpi-degraded": each page rotated 0.7°, Gaussian blur radius 0.8 px and 2%
  of its pixels set to random grey (`scans.degrade`, seeded by page; the same pixel figures at 150
  dpi are a relatively stronger blur).

Each PDF is read by `qa.ingest.read_document` with a `qa.ocr.Recogniser` at the dpi it was rendered at
(tesseract 5, Arabic, one thread a page and two pages at a time). Measured per condition:

- CER: Levenshtein distance (rapidfuzz) from the OCR text to the source text, whitespace runs
  collapsed to one space, over the source's length; pooled over articles (sum of distances over sum
  of lengths) with a bootstrap 95% interval resampling articles (eval/stats.py's BCa bootstrap of a
  ratio); also with Arabic diacritics and tatweel removed from both sides (`qa.text`'s diacritics
  pattern, which `normalize` uses): what OCR misses of the few diacritics the articles carry.
  `confusions` lists the commonest edits (source → OCR characters) over the condition's articles.
  Latin words, which the Arabic model (`Settings.ocr_languages`) reads as digits and symbols, are read
  again by the English model with the `latin` repair (`--repairs`); other scripts count as errors.
- R@1 by question language, on a fresh index of the condition's documents alone: the top chunk
  of `retriever.retrieve(question)` overlaps the gold answer span. In OCR text the gold string need
  not occur verbatim, so its span is mapped from the clean text by aligning the two texts
  (rapidfuzz `Levenshtein.opcodes`; a replaced block maps proportionally, a deleted one to a point
  of zero width, which still counts as inside a chunk that contains it); `gold_verbatim` says how
  often the mapped span is the gold string itself. Wilson 95% intervals on the effective count
  (`eval.stats.summary`, design effect over articles).
- span F1 by question language: `assistant.ask` with the short answer on (`short_answer="on"`,
  `llm_timeout_s=600`, `auto_translate=False` as eval/ sets it), scored as eval/metrics.py `score_short_answer`'s `span_f1` (token F1 of the
  short answer's source quote, best over the Arabic golds; no short answer or an abstention is 0),
  with bootstrap 95% intervals. The reader takes 10-20 s a question on 2 cores, so span F1 is
  measured only for `--reader-conditions` (default clean, 300dpi, 300dpi-degraded) on at most
  `--questions-per-lang` questions per language (default 20), evenly spaced over the half's
  questions of that language, the same questions in every condition; a reader condition that would
  end the run past `--budget-min` minutes is skipped (`reader.skipped_for_budget`).
- false abstentions by question language: the quote abstains (`qa.answer.is_weak`, the best
  evidence under the abstention threshold) on a question that has an answer (all of them); Wilson
  intervals as R@1's.
- OCR against clean, paired on the same questions: `vs_clean`, the difference in R@1, abstention and span F1
  per language with a paired bootstrap 95% interval over articles (`eval.stats.paired_bootstrap`).
- speed: pages recognised per minute, from `read_document`'s wall time alone (PDF page rendering by
  pypdfium2 and tesseract; not typesetting, degrading or indexing), on the 2 cores as they were
  (the load average is in `machine_state`).

Every question of the dev benchmark has an answer (no unanswerable rows); a row without answers
would be skipped. Per-question rows (`questions`) keep each hit and F1 for paired comparisons.

Run: `OMP_WAIT_POLICY=PASSIVE python -m bench.bench_ocr` (about 50 minutes on a shared machine;
`--no-reader` skips span F1, about 10 minutes); a quick check:
`python -m bench.bench_ocr --articles 1 --no-reader --out /tmp/ocr.json`. Options: `--conditions`,
`--articles N`, `--no-reader`, `--reader-conditions`, `--questions-per-lang`, `--out`, `--workdir`.
Writes bench/results/ocr.json and bench/results/ocr.png (or `--out` and the .png beside it).

Leaves out: real scans and photos (paper texture, shadows, perspective, columns, headlines and
pictures: one column of body text typeset from the source), other fonts and sizes, the other half
of the articles, answer wording beyond the short answer's span, and the reader on the 150 dpi copies.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
import unicodedata
import zlib
from collections import Counter
from pathlib import Path

from rapidfuzz.distance import Levenshtein
from tqdm import tqdm

from bench.common import DEV, RESULTS, fresh_assistant, save
from bench.scans import FONTS, degrade, image_pdf, typeset, with_fallback
from eval import conditions, stats
from eval.metrics import score_short_answer
from qa import text as qtext
from qa.answer import is_weak
from qa.ingest import read_document
from qa.ocr import DEFAULT_REPAIRS, REPAIRS, Recogniser

REPORT_FOLD = 1  # zlib.crc32(article) % 2 == 1: the half this benchmark reports on
DEGRADED = {"noise": 0.02, "blur": 0.8, "angle": 0.7}
# name -> (dpi, degraded); "clean" is the .txt itself
CONDITIONS = {
    "clean": None,
    "300dpi": (300, False),
    "150dpi": (150, False),
    "300dpi-degraded": (300, True),
    "150dpi-degraded": (150, True),
}
READER_CONDITIONS = ("clean", "300dpi", "300dpi-degraded")
SETTINGS = {"short_answer": "on", "llm_timeout_s": 600, "auto_translate": False}
# Noto Naskh Arabic has no Latin, ASCII punctuation or hyphen: these come from Noto Serif
# (fonts-noto-core, the same family's Latin face, 1000 units per em like Naskh).
FALLBACK = Path("/usr/share/fonts/truetype/noto/NotoSerif-Regular.ttf")
CONFUSIONS = 15  # commonest edits kept per condition


# ---------------------------------------------------------------------------------------------
# Text comparison


def flat(text: str) -> str:
    """Whitespace runs as one space, ends stripped."""
    return " ".join(text.split())


def bare(text: str) -> str:
    """Without Arabic diacritics and tatweel (qa.text's pattern, the one `normalize` uses)."""
    return qtext._DIACRITICS.sub("", text)


def edit_counts(ocr: str, source: str) -> dict:
    """Edits from the OCR text to the source and the source's length, raw and without diacritics."""
    hyp, ref = flat(ocr), flat(source)
    hyp_bare, ref_bare = flat(bare(hyp)), flat(bare(ref))
    return {
        "edits": Levenshtein.distance(hyp, ref),
        "_confusions": confusions(ref, hyp),
        "chars": len(ref),
        "edits_bare": Levenshtein.distance(hyp_bare, ref_bare),
        "chars_bare": len(ref_bare),
    }


def confusions(ref: str, hyp: str) -> Counter:
    """Edits from the source to the OCR text as "source → ocr" strings (one character each side;
    "" for a character missed or added), from the Levenshtein alignment."""
    out: Counter = Counter()
    for op in Levenshtein.editops(ref, hyp):
        a = ref[op.src_pos] if op.tag != "insert" else ""
        b = hyp[op.dest_pos] if op.tag != "delete" else ""
        out[f"{a or '∅'} → {b or '∅'}"] += 1
    return out


def named(edit: str) -> str:
    """An edit with each character's Unicode name, for reading diacritics and look-alikes."""
    parts = edit.split(" → ")
    return " → ".join("∅" if p == "∅" else unicodedata.name(p, hex(ord(p))) for p in parts)


def missing_glyphs(font_file: Path, texts: list[str]) -> dict:
    """Characters of `texts` (not whitespace) that the font has no glyph for: count and which."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(font_file), lazy=True).getBestCmap()
    missing = Counter(ch for t in texts for ch in t if not ch.isspace() and ord(ch) not in cmap)
    total = sum(len(t) - sum(ch.isspace() for ch in t) for t in texts)
    return {"chars": sum(missing.values()), "of": total, "which": "".join(sorted(missing))}


def pooled_cer(rows: list[dict], edits: str, chars: str) -> dict:
    """Sum of edits over sum of source characters, with a bootstrap 95% interval over articles."""
    import numpy as np

    e = np.array([r[edits] for r in rows], dtype=float)
    c = np.array([r[chars] for r in rows], dtype=float)
    value = float(e.sum() / c.sum())
    ci = stats._run_bootstrap([e, c], stats._ratio, paired=True) if len(rows) >= 2 else None
    low, high = ci if ci else (None, None)
    return {"value": round(value, 4), "ci": [_r(low), _r(high)], "articles": len(rows)}


def boundary_map(src: str, dst: str):
    """A function taking a boundary offset in `src` to one in `dst`, from their Levenshtein alignment."""
    ops = Levenshtein.opcodes(src, dst)

    def at(pos: int) -> int:
        for op in ops:
            if op.src_start <= pos < op.src_end:
                if op.tag == "equal":
                    return op.dest_start + pos - op.src_start
                if op.tag == "replace":
                    share = (pos - op.src_start) / (op.src_end - op.src_start)
                    return op.dest_start + round(share * (op.dest_end - op.dest_start))
                return op.dest_start  # deleted
        return len(dst)

    return at


# ---------------------------------------------------------------------------------------------
# Data


def report_half(limit: int | None) -> tuple[dict[str, dict], list[dict]]:
    """The report half's articles (by name) and their answerable questions."""
    articles = {
        a["article"]: a
        for a in map(json.loads, (DEV / "articles.jsonl").open(encoding="utf-8"))
        if zlib.crc32(a["article"].encode()) % 2 == REPORT_FOLD
    }
    names = sorted(articles)[:limit]
    articles = {n: articles[n] for n in names}
    questions = [
        q
        for q in map(json.loads, (DEV / "questions.jsonl").open(encoding="utf-8"))
        if q["article"] in articles and q.get("answers")
    ]
    return articles, questions


def reader_sample(questions: list[dict], per_lang: int) -> list[dict]:
    """At most `per_lang` questions of each language, evenly spaced over that language's list."""
    out = []
    for lang in sorted({q["question_lang"] for q in questions}):
        qs = [q for q in questions if q["question_lang"] == lang]
        n = min(per_lang, len(qs))
        out += [qs[i * len(qs) // n] for i in range(n)] if n else []
    return out


def gold_in_clean(text: str, q: dict) -> tuple[int, int]:
    """The gold answer's span in the clean document text: the occurrence of `answers[0]` nearest
    `article_answer_start` (the .txt's offset; our text has no BOM and is stripped)."""
    gold = q["answers"][0]
    hits, i = [], text.find(gold)
    while i >= 0:
        hits.append(i)
        i = text.find(gold, i + 1)
    if not hits:
        raise ValueError(f"{q['id']}: gold not found in {q['article']}")
    start = min(hits, key=lambda h: abs(h - q["article_answer_start"]))
    return start, start + len(gold)


# ---------------------------------------------------------------------------------------------
# One condition


def scan(text: str, *, dpi: int, degraded: bool, font: str | Path) -> tuple[bytes, int]:
    """The article typeset at `dpi` (degraded or not) as an image-only PDF, and its page count."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    images = [p.image for p in typeset(paragraphs, dpi=dpi, font=font)]
    if degraded:
        images = [degrade(im, **DEGRADED, seed=i) for i, im in enumerate(images)]
    return image_pdf(images, dpi=dpi), len(images)


def build(name: str, articles: dict, workdir: Path, font: str | Path, repairs: tuple[str, ...]) -> dict:
    """The condition's documents (OCR'd when it is a scan, its text with `repairs` made), their CER,
    and their files."""
    spec = CONDITIONS[name]
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    out = {"docs": {}, "files": [], "rows": [], "pages": 0, "ocr_s": 0.0}
    for article, info in tqdm(articles.items(), desc=name, unit="article", leave=False):
        clean = read_document(DEV / info["file"])
        if spec is None:
            out["docs"][article] = (clean.id, clean.text, clean.text)
            out["files"].append(DEV / info["file"])
            continue
        dpi, degraded = spec
        pdf, pages = scan(clean.text, dpi=dpi, degraded=degraded, font=font)
        path = folder / f"{article}.pdf"
        path.write_bytes(pdf)
        recogniser = Recogniser(workdir / f"ocr-{name}", dpi=dpi, repairs=repairs, progress=False)
        t0 = time.perf_counter()
        doc = read_document(path, ocr=recogniser)
        seconds = time.perf_counter() - t0
        out["pages"] += pages
        out["ocr_s"] += seconds
        out["docs"][article] = (doc.id, doc.text, clean.text)
        out["files"].append(path)
        out["rows"].append(
            {"article": article, "pages": pages, "ocr_s": round(seconds, 2)}
            | edit_counts(doc.text, clean.text)
        )
    return out


def recall(qa, built: dict, questions: list[dict]) -> tuple[dict[str, int], dict[str, bool], dict[str, int]]:
    """Per question id: 1 when the top chunk overlaps the (mapped) gold span; whether the mapped
    span is the gold string verbatim; and 1 when the quote abstains (`qa.answer.is_weak`: the best
    evidence under the abstention threshold; every question has an answer, so each is false)."""
    maps = {a: boundary_map(clean, text) for a, (_, text, clean) in built["docs"].items()}
    hits, verbatim, abstained = {}, {}, {}
    for q in tqdm(questions, desc="retrieval", unit="q", leave=False):
        doc_id, text, clean = built["docs"][q["article"]]
        start, end = gold_in_clean(clean, q)
        start, end = (start, end) if text is clean else (maps[q["article"]](start), maps[q["article"]](end))
        verbatim[q["id"]] = text[start:end] == q["answers"][0]
        retrieval = qa.retriever.retrieve(q["question"])
        abstained[q["id"]] = int(is_weak(retrieval, qa.settings))
        top = retrieval.hits[0].chunk if retrieval.hits else None
        hits[q["id"]] = int(
            top is not None and top.doc_id == doc_id and top.start < max(end, start + 1) and start < top.end
        )
    return hits, verbatim, abstained


def read(qa, questions: list[dict]) -> tuple[dict[str, float], list[float]]:
    """span F1 per question id (eval's `span_f1`), and the seconds each answer took."""
    f1, seconds = {}, []
    for q in tqdm(questions, desc="reader", unit="q", leave=False):
        t0 = time.perf_counter()
        answer = qa.ask(q["question"]).to_dict()
        seconds.append(time.perf_counter() - t0)
        # Arabic spans and the English answers, as eval's dev loader gives them; span F1 uses the Arabic
        scores = score_short_answer(
            answer["short_answer"],
            q["answers"] + q.get("answers_en", []),
            lang=q["question_lang"],
            abstained=answer["abstained"],
        )
        f1[q["id"]] = scores["span_f1"] or 0.0
    return f1, seconds


# ---------------------------------------------------------------------------------------------
# Tables


def _r(x, n: int = 4):
    return None if x is None else round(x, n)


def by_language(values: dict[str, float], questions: list[dict], kind: str) -> dict:
    """{lang: {"value", "ci", "n", "clusters"}} of the questions that have a value."""
    out = {}
    for lang in sorted({q["question_lang"] for q in questions}):
        qs = [q for q in questions if q["question_lang"] == lang and q["id"] in values]
        if not qs:
            continue
        s = stats.summary([values[q["id"]] for q in qs], kind=kind, groups=[q["article"] for q in qs])
        out[lang] = {
            "value": _r(s["value"]),
            "ci": [_r(s["low"]), _r(s["high"])],
            "n": s["n"],
            "clusters": s["clusters"],
        }
    return out


def vs_clean(per_q: dict[str, dict], name: str, metric: str) -> dict:
    """{lang: {"diff", "ci", "n"}}: `metric` under condition `name` minus clean, paired on the
    questions scored under both, with a paired bootstrap 95% interval over articles."""
    out = {}
    for lang in sorted({r["lang"] for r in per_q.values()}):
        rows = [r for r in per_q.values() if r["lang"] == lang and {"clean", name} <= set(r[metric])]
        if not rows:
            continue
        d = stats.paired_bootstrap(
            [r[metric]["clean"] for r in rows],
            [r[metric][name] for r in rows],
            groups=[r["article"] for r in rows],
        )
        out[lang] = {"diff": _r(d["diff"]), "ci": [_r(d["low"]), _r(d["high"])], "n": d["n"]}
    return out


def save_to(path: Path, data: dict) -> Path:
    """`bench.common.save` for bench/results/ocr.json; elsewhere (`--out`) the same header, written there."""
    if path.resolve() == (RESULTS / "ocr.json").resolve():
        return save("ocr", data)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine_state": conditions.machine(),
        **conditions.commit(),
    }
    path.write_text(json.dumps(head | data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def plot(result: dict, path: Path) -> None:
    """CER per condition (raw and without diacritics) with intervals; R@1 and span F1 per language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = result["conditions"]
    names = list(conds)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))

    def bars(ax, series: list[tuple[str, list]], title: str, ylabel: str):
        width = 0.8 / max(len(series), 1)
        for k, (label, cells) in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(names))]
            ys = [c["value"] if c and c["value"] is not None else float("nan") for c in cells]
            lo = [
                y - c["ci"][0] if c and c["ci"][0] is not None else 0 for y, c in zip(ys, cells, strict=True)
            ]
            hi = [
                c["ci"][1] - y if c and c["ci"][1] is not None else 0 for y, c in zip(ys, cells, strict=True)
            ]
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=label)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        if series:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)

    ocr_names = [n for n in names if n != "clean"]
    cer_series = [
        ("CER", [conds[n].get("cer") for n in names]),
        ("CER, no diacritics", [conds[n].get("cer_no_diacritics") for n in names]),
    ]
    bars(axes[0], cer_series, f"Character error rate ({result['font']}, 95% CI over articles)", "CER")
    axes[0].set_xlim(0.5 if ocr_names else -0.5, len(names) - 0.5)
    langs = sorted({lang for n in names for lang in conds[n]["R@1"]})
    bars(
        axes[1],
        [(f"R@1 {lang}", [conds[n]["R@1"].get(lang) for n in names]) for lang in langs],
        "R@1 (Wilson 95%)",
        "R@1",
    )
    f1_langs = sorted({lang for n in names for lang in (conds[n].get("span_f1") or {})})
    bars(
        axes[2],
        [
            (f"span F1 {lang}", [(conds[n].get("span_f1") or {}).get(lang) for n in names])
            for lang in f1_langs
        ],
        "Short answer span F1 (bootstrap 95%)",
        "span F1",
    )
    fig.suptitle(
        f"OCR of typeset dev articles (report half, {result['articles']} articles), clean text vs OCR",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--articles", type=int, help="only the first N articles of the half (by name)")
    parser.add_argument("--questions-per-lang", type=int, default=20, help="reader questions per language")
    parser.add_argument(
        "--reader-conditions", nargs="*", default=list(READER_CONDITIONS), choices=list(CONDITIONS)
    )
    parser.add_argument("--no-reader", action="store_true", help="skip span F1 (the reader)")
    parser.add_argument(
        "--repairs",
        nargs="*",
        choices=list(REPAIRS),
        default=list(DEFAULT_REPAIRS),
        help="OCR repairs to make (qa.ocr.REPAIRS; default the shipped ones; none: tesseract as read)",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=55,
        help="skip a reader condition that would end the run past this",
    )
    parser.add_argument(
        "--out", type=Path, help="result file (default bench/results/ocr.json); the plot beside it, .png"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where scans, OCR pages and indexes go (default: a temporary folder)"
    )
    args = parser.parse_args()

    articles, questions = report_half(args.articles)
    sample = reader_sample(questions, args.questions_per_lang)
    reader_conditions = [] if args.no_reader else [c for c in args.conditions if c in args.reader_conditions]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="qa-bench-ocr-"))
    if FONTS["naskh"].is_file():
        font = "naskh"
        font_file = with_fallback(FONTS["naskh"], FALLBACK, workdir) if FALLBACK.is_file() else FONTS["naskh"]
    else:
        font, font_file = "dejavu", FONTS["dejavu"]
    out_json = args.out or RESULTS / "ocr.json"
    texts = [read_document(DEV / info["file"]).text for info in articles.values()]
    print(f"{len(articles)} articles, {len(questions)} questions, font {font}, work in {workdir}", flush=True)

    result = {
        "fold": f"report half: zlib.crc32(article) % 2 == {REPORT_FOLD}",
        "font": font,
        "font_file": str(font_file),
        "font_fallback": str(FALLBACK) if font_file != FONTS[font] else None,
        "missing_glyphs": missing_glyphs(font_file, texts),
        "degraded": DEGRADED,
        "repairs": list(args.repairs),
        "articles": len(articles),
        "article_names": list(articles),
        "questions": len(questions),
        "reader": {
            "settings": SETTINGS,
            "questions_per_lang": args.questions_per_lang,
            "sample": [q["id"] for q in sample] if reader_conditions else [],
            "conditions": reader_conditions,
        },
        "conditions": {},
        "per_question": {},
    }
    per_q = {
        q["id"]: {
            "lang": q["question_lang"],
            "article": q["article"],
            "hit@1": {},
            "abstained": {},
            "span_f1": {},
        }
        for q in questions
    }
    t_start = time.perf_counter()

    def write():
        result["wall_s"] = round(time.perf_counter() - t_start, 1)
        if "clean" in result["conditions"]:
            for name, row in result["conditions"].items():
                if name != "clean":
                    row["vs_clean"] = {m: vs_clean(per_q, name, m) for m in ("hit@1", "abstained", "span_f1")}
        result["per_question"] = per_q
        save_to(out_json, result)
        plot(result, out_json.with_suffix(".png"))

    indexes = {}
    for name in args.conditions:  # OCR, CER and R@1 for every condition first
        t0 = time.perf_counter()
        built = build(name, articles, workdir, font_file, tuple(args.repairs))
        edits = sum((r.pop("_confusions") for r in built["rows"]), Counter())
        dpi = CONDITIONS[name][0] if CONDITIONS[name] else 300
        indexes[name] = workdir / name / "chroma"
        qa = fresh_assistant(
            indexes[name],
            ocr_path=workdir / f"ocr-{name}",
            ocr_dpi=dpi,
            ocr_repairs=",".join(args.repairs),
            **SETTINGS,
        )
        t1 = time.perf_counter()
        qa.ingest(built["files"], progress=False)  # the pages were kept by `build`: not read again
        ingest_s = time.perf_counter() - t1
        hits, verbatim, abstained = recall(qa, built, questions)
        for qid, h in hits.items():
            per_q[qid]["hit@1"][name] = h
            per_q[qid]["abstained"][name] = abstained[qid]
        row = {
            "dpi": dpi if CONDITIONS[name] else None,
            "degraded": bool(CONDITIONS[name] and CONDITIONS[name][1]),
            "R@1": by_language(hits, questions, "rate"),
            "abstained": by_language(abstained, questions, "rate"),
            "gold_verbatim": round(sum(verbatim.values()) / max(len(verbatim), 1), 3),
            "ingest_s": round(ingest_s, 1),
        }
        if built["rows"]:
            row |= {
                "cer": pooled_cer(built["rows"], "edits", "chars"),
                "cer_no_diacritics": pooled_cer(built["rows"], "edits_bare", "chars_bare"),
                "pages": built["pages"],
                "ocr_s": round(built["ocr_s"], 1),
                "pages_per_min": round(built["pages"] / built["ocr_s"] * 60, 1),
                "confusions": [
                    {"edit": e, "n": n, "names": named(e)} for e, n in edits.most_common(CONFUSIONS)
                ],
                "by_article": built["rows"],
            }
        result["conditions"][name] = row
        del qa
        gc.collect()
        r1 = "  ".join(f"R@1 {lang} {v['value']:.3f}" for lang, v in row["R@1"].items())
        r1 += "  " + "  ".join(f"abstained {lang} {v['value']:.3f}" for lang, v in row["abstained"].items())
        cer = (
            f"CER {row['cer']['value']:.3f} (bare {row['cer_no_diacritics']['value']:.3f}), {row['pages_per_min']} pages/min  "
            if "cer" in row
            else ""
        )
        print(f"{name}: {cer}{r1}  [{time.perf_counter() - t0:.0f} s]", flush=True)
        write()

    per_question_s = 15.0  # a first guess at the reader's seconds a question, then the measured mean
    for name in reader_conditions:  # then the reader, on the indexes made above, within the budget
        t0 = time.perf_counter()
        if (t0 - t_start + per_question_s * len(sample)) / 60 > args.budget_min:
            result["reader"].setdefault("skipped_for_budget", []).append(name)
            print(f"{name}: reader skipped (over the {args.budget_min} min budget)", flush=True)
            continue
        dpi = CONDITIONS[name][0] if CONDITIONS[name] else 300
        qa = fresh_assistant(indexes[name], ocr_path=workdir / f"ocr-{name}", ocr_dpi=dpi, **SETTINGS)
        f1, seconds = read(qa, sample)
        for qid, v in f1.items():
            per_q[qid]["span_f1"][name] = round(v, 4)
        row = result["conditions"][name]
        row["span_f1"] = by_language(f1, sample, "mean")
        per_question_s = sum(seconds) / max(len(seconds), 1)
        row["reader_s_per_question"] = round(per_question_s, 1)
        del qa
        gc.collect()
        f1s = "  ".join(f"span F1 {lang} {v['value']:.3f}" for lang, v in row["span_f1"].items())
        print(f"{name}: {f1s}  [{time.perf_counter() - t0:.0f} s]", flush=True)
        write()
    write()
    print(f"written to {out_json} and {out_json.with_suffix('.png')} in {result['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
