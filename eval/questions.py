"""Question sets: load JSONL, YAML, CSV, SQuAD-format JSON and the arabic-qa-dev layout into one shape.

Every loader returns a `QuestionSet`: the questions, the problems found (one line each, with the
line or item number; the other questions still load), and for formats that carry their own
documents (SQuAD JSON, the dev layout) the document files or texts to index. Gold evidence is kept
as strings or as explicit [start, end) spans; the runner resolves both against the indexed text.
The web app's ratings (qa.feedback) are lines of this JSONL format, so `.qa/feedback.jsonl` loads
like any question set; `feedback_record` is re-exported here beside the loader that reads it.
Leaves out: running anything (runner.py) and scoring (metrics.py).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from qa import text as qtext
from qa.errors import InputError
from qa.feedback import feedback_record as feedback_record  # the writer of the format `load` reads

if TYPE_CHECKING:
    pass

KNOWN = {"id", "question", "lang", "answers", "evidence", "unanswerable", "doc", "follows"}


# The calibration set's parts, by article (the one split every experiment uses): fit the calibrators
# on "fit", certify their thresholds on "certify", report on "report"; never two roles on one part.
SPLIT = ("fit", "certify", "report")
PARTS = (*SPLIT, "all")


def part_of(doc: str | None) -> str:
    """The calibration part of an article: `SPLIT[sha256(article id) mod 3]`, the id without its
    ".txt"; fixed by the id alone, never by results. A question without an article is "report".

    Example: part_of("xquadc_00_Super_Bowl_50.txt") == part_of("xquadc_00_Super_Bowl_50")
    """
    if not doc:
        return "report"
    article = doc.removesuffix(".txt")
    return SPLIT[int(hashlib.sha256(article.encode("utf-8")).hexdigest(), 16) % len(SPLIT)]


@dataclass(frozen=True)
class Question:
    """One question with its gold data; `extra` carries every other field through to the results."""

    id: str
    question: str
    lang: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    unanswerable: bool = False
    doc: str | None = None
    follows: str | None = None
    spans: tuple[tuple[str, int, str], ...] = ()  # explicit gold spans: (doc id, start, answer text)
    extra: dict = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        """answerable or unanswerable, plus follow-up when it depends on an earlier question."""
        out = ["unanswerable" if self.unanswerable else "answerable"]
        return [*out, "follow-up"] if self.follows else out


@dataclass
class QuestionSet:
    """Questions, the problems met while loading them, and the documents the set brings along."""

    questions: list[Question]
    problems: list[str] = field(default_factory=list)
    doc_paths: list[Path] = field(default_factory=list)  # files to index as they are
    doc_texts: dict[str, str] = field(default_factory=dict)  # doc id -> text, written out then indexed
    name: str = ""

    def sample(self, n: int | None) -> QuestionSet:
        """About `n` questions spread evenly over the set, in the same share per question language
        (every k-th of each language), without follow-ups (a sample cannot keep conversations
        whole). Deterministic: no randomness."""
        if not n or n >= len(self.questions):
            return self
        step = -(-len(self.questions) // n)
        by_lang: dict[str, list[Question]] = {}
        for q in self.questions:
            if not q.follows:
                by_lang.setdefault(q.lang or "", []).append(q)
        keep = {id(q) for group in by_lang.values() for q in group[::step]}
        kept = [q for q in self.questions if id(q) in keep]
        return QuestionSet(kept, self.problems, self.doc_paths, self.doc_texts, self.name)

    def part(self, name: str, articles: tuple[int, int] | None = None) -> QuestionSet:
        """One calibration part by article (`part_of`: "fit", "certify", "report") or "all"; the
        questions ordered by the crc32 of their article id, article by article, so that a run
        stopped part way holds whole articles drawn at random, from every part.
        `articles` (start, end) keeps only the articles ranked [start, end) in that order, and only
        their files are indexed: a collection the size of the dev set's instead of all 321 articles
        (a batch of the calibration set; the next sitting can take the next batch).
        Raises `InputError` for another name."""
        if name not in PARTS:
            raise InputError(f"Unknown part {name!r}; choose from: {', '.join(PARTS)}.")
        kept = [q for q in self.questions if name == "all" or part_of(q.doc) == name]
        position = {q.id: i for i, q in enumerate(self.questions)}
        kept.sort(key=lambda q: (zlib.crc32((q.doc or "").encode()), q.doc or "", position[q.id]))
        paths, label = self.doc_paths, f"{self.name}-{name}"
        if articles is not None:
            docs = list(dict.fromkeys(q.doc for q in kept))[articles[0] : articles[1]]
            kept = [q for q in kept if q.doc in set(docs)]
            paths = [p for p in self.doc_paths if p.name in set(docs)]
            label += f"-articles-{articles[0]}-{articles[1]}"
        return QuestionSet(kept, self.problems, paths, self.doc_texts, label)

    def held_out(self) -> QuestionSet:
        """Every question made unanswerable, for asking with its own document removed from the index.

        Gold answers and evidence are dropped; follow-ups lose their parent (each is asked alone).
        """
        kept = [
            dataclasses.replace(q, unanswerable=True, answers=(), evidence=(), spans=(), follows=None)
            for q in self.questions
            if q.doc
        ]
        return QuestionSet(kept, self.problems, self.doc_paths, self.doc_texts, f"{self.name}-held-out")

    def limit(self, n: int | None) -> QuestionSet:
        """The first `n` questions, plus any earlier question a kept follow-up depends on."""
        if not n or n >= len(self.questions):
            return self
        by_id = {q.id: q for q in self.questions}
        keep = {q.id for q in self.questions[:n]}
        todo = list(keep)
        while todo:
            parent = by_id[todo.pop()].follows
            if parent and parent in by_id and parent not in keep:
                keep.add(parent)
                todo.append(parent)
        kept = [q for q in self.questions if q.id in keep]
        return QuestionSet(kept, self.problems, self.doc_paths, self.doc_texts, self.name)


def load(path: Path, *, strict: bool = False) -> QuestionSet:
    """Load a question set by its form: a dev-layout folder, .jsonl, .yaml/.yml, .csv or SQuAD .json."""
    path = Path(path)
    if path.is_dir():
        if (path / "questions.jsonl").is_file() and (path / "articles.jsonl").is_file():
            qs = load_dev_layout(path)
        else:
            raise InputError(f"{path} is a folder without questions.jsonl and articles.jsonl.")
    elif not path.is_file():
        raise InputError(f"The question set {path} does not exist.")
    else:
        suffix = path.suffix.lower()
        loaders = {".jsonl": load_jsonl, ".yaml": load_yaml, ".yml": load_yaml, ".csv": load_csv}
        if suffix == ".json":
            qs = load_squad(path)
        elif suffix in loaders:
            qs = loaders[suffix](path)
        else:
            raise InputError(f"{path.name}: use .jsonl, .yaml, .csv, SQuAD .json or a dev-layout folder.")
    qs.name = qs.name or path.stem
    if strict and qs.problems:
        raise InputError(f"{qs.problems[0]} (and {len(qs.problems) - 1} more problems; --strict stops here).")
    if not qs.questions:
        raise InputError(f"{path.name} holds no usable question.")
    return qs


# ---------------------------------------------------------------------------------------------
# Rows (JSONL, YAML, CSV): one dict per question


def from_rows(rows: list[tuple[str, object]], name: str = "") -> QuestionSet:
    """Questions from (where, row) pairs; bad rows become problems naming `where`."""
    questions, problems, seen = [], [], set()
    for where, row in rows:
        try:
            q = _question(row)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if q.id in seen:
            problems.append(f"{where}: duplicate id {q.id!r}; the first one is kept.")
            continue
        seen.add(q.id)
        questions.append(q)
    ids = {q.id for q in questions}
    for i, q in enumerate(questions):
        if q.follows and q.follows not in ids:
            problems.append(f"question {q.id!r} follows {q.follows!r}, which is not in the set; asked alone.")
            questions[i] = _replace(q, follows=None)
    return QuestionSet(questions, problems, name=name)


def _replace(q: Question, **changes) -> Question:
    from dataclasses import replace

    return replace(q, **changes)


def _strings(value, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v.strip())
    raise ValueError(f"`{name}` must be a string or a list of strings")


def _question(row) -> Question:
    if not isinstance(row, dict):
        raise ValueError("not an object with `id` and `question`")
    qid, text = row.get("id"), row.get("question")
    if qid is None or str(qid).strip() == "":
        raise ValueError("missing `id`")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"question {qid!r} has no `question` text")
    unanswerable = row.get("unanswerable", False)
    if isinstance(unanswerable, str):
        unanswerable = unanswerable.strip().lower() in ("1", "true", "yes", "y")
    answers = _strings(row.get("answers"), "answers")
    if unanswerable and answers:
        raise ValueError(f"question {qid!r} is marked unanswerable but has answers")
    lang = row.get("lang") or qtext.detect_language(text)
    if lang not in ("ar", "en"):
        raise ValueError(f"question {qid!r}: `lang` must be ar or en, not {lang!r}")
    follows = row.get("follows")
    return Question(
        id=str(qid),
        question=text.strip(),
        lang=lang,
        answers=answers,
        evidence=_strings(row.get("evidence"), "evidence"),
        unanswerable=bool(unanswerable),
        doc=row.get("doc") or None,
        follows=str(follows) if follows not in (None, "") else None,
        extra={k: v for k, v in row.items() if k not in KNOWN},
    )


def load_jsonl(path: Path) -> QuestionSet:
    """One JSON object per line; blank lines and lines starting with # are skipped."""
    rows, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append((f"{path.name}:{n}", json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{n}: not valid JSON ({exc.msg})")
    qs = from_rows(rows)
    qs.problems[:0] = problems
    return qs


def load_yaml(path: Path) -> QuestionSet:
    """A YAML list of questions, or a mapping with a `questions` list."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path.name} is not valid YAML ({exc}).") from None
    if isinstance(data, dict):
        data = data.get("questions")
    if not isinstance(data, list):
        raise InputError(f"{path.name} must hold a list of questions (or `questions:` with a list).")
    return from_rows([(f"{path.name}: item {i}", row) for i, row in enumerate(data, start=1)])


def load_csv(path: Path) -> QuestionSet:
    """A CSV with a header; `answers`/`evidence` cells hold a JSON list or `|`-separated strings."""
    rows = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            clean = {k: v for k, v in row.items() if k and v not in (None, "")}
            for key in ("answers", "evidence"):
                if key in clean:
                    clean[key] = _cell_list(clean[key])
            rows.append((f"{path.name}:{reader.line_num}", clean))
    return from_rows(rows)


def _cell_list(cell: str) -> list[str]:
    if cell.lstrip().startswith("["):
        try:
            value = json.loads(cell)
            if isinstance(value, list):
                return [str(v) for v in value]
        except json.JSONDecodeError:
            pass
    return [part.strip() for part in cell.split("|") if part.strip()]


# ---------------------------------------------------------------------------------------------
# SQuAD-format JSON (SQuAD, XQuAD, ARCD, MLQA, TyDi QA GoldP) and the arabic-qa-dev layout


def load_squad(path: Path) -> QuestionSet:
    """SQuAD JSON: each article becomes one document (its contexts joined by blank lines)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError(f"{path.name} is not SQuAD-format JSON (no `data` list).")
    rows, texts, spans, used = [], {}, {}, set()
    for a_index, article in enumerate(data["data"]):
        doc_id = _doc_name(str(article.get("title") or f"article_{a_index}"), used)
        parts, offset = [], 0
        for p_index, para in enumerate(article.get("paragraphs", [])):
            context = para.get("context", "")
            for qa in para.get("qas", []):
                where = f"{path.name}: article {a_index} paragraph {p_index} question {qa.get('id')}"
                answers = [a for a in qa.get("answers", []) if isinstance(a, dict) and a.get("text")]
                row = {
                    "id": qa.get("id"),
                    "question": qa.get("question"),
                    "answers": list(dict.fromkeys(a["text"] for a in answers)),
                    "unanswerable": bool(qa.get("is_impossible")) or not answers,
                    "doc": doc_id,
                }
                if row["unanswerable"]:
                    row["answers"] = []
                rows.append((where, row))
                spans[str(qa.get("id"))] = tuple(
                    (doc_id, offset + a["answer_start"], a["text"])
                    for a in answers
                    if isinstance(a.get("answer_start"), int)
                )
            parts.append(context)
            offset += len(context) + 2
        texts[doc_id] = "\n\n".join(parts)
    qs = from_rows(rows)
    qs.questions = [_replace(q, spans=spans.get(q.id, ())) for q in qs.questions]
    qs.doc_texts = texts
    return qs


def _doc_name(title: str, used: set[str]) -> str:
    base = re.sub(r"[^\w\-]+", "_", title).strip("_")[:60] or "article"
    name, n = f"{base}.txt", 1
    while name in used:
        n += 1
        name = f"{base}_{n}.txt"
    used.add(name)
    return name


def load_dev_layout(root: Path) -> QuestionSet:
    """The arabic-qa-dev folder: articles/*.txt, articles.jsonl, questions.jsonl (see its README)."""
    articles = [
        json.loads(line) for line in (root / "articles.jsonl").read_text("utf-8").splitlines() if line
    ]
    doc_paths = [root / a["file"] for a in articles]
    missing = [p.name for p in doc_paths if not p.is_file()]
    if missing:
        raise InputError(f"{root.name}: article file {missing[0]} is missing.")
    rows, spans = [], {}
    path = root / "questions.jsonl"
    for n, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((f"{path.name}:{n}", f"not valid JSON ({exc.msg})"))
            continue
        row = dict(raw)
        doc = f"{raw.get('article')}.txt"
        # Arabic gold spans plus the parallel English answers: each is scored in its own language.
        row["answers"] = list(raw.get("answers", [])) + list(raw.get("answers_en", []))
        row["lang"] = raw.get("question_lang")
        row["doc"] = doc
        row.pop("question_lang", None)
        start = raw.get("article_answer_start")
        if isinstance(start, int) and raw.get("answers"):
            spans[str(raw.get("id"))] = ((doc, start, raw["answers"][0]),)
        rows.append((f"{path.name}:{n}", row))
    bad = [f"{w}: {r}" for w, r in rows if isinstance(r, str)]
    qs = from_rows([(w, r) for w, r in rows if not isinstance(r, str)], name=root.name)
    qs.problems[:0] = bad
    qs.questions = [_replace(q, spans=spans.get(q.id, ())) for q in qs.questions]
    qs.doc_paths = doc_paths
    return qs
