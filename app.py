"""The web UI: a Gradio chat over the indexed documents, each answer's cited sentences shown beside it.

`build_app()` wires components to `qa.assistant.Assistant` (ingest / ask / stream / documents / remove)
and formats what comes back; `launch()` warms the embedding model in the background, binds 127.0.0.1
(or QA_HOST once QA_AUTH turns login on) and prints the URL. Every piece of user or document text is
HTML-escaped before it reaches the page, and messages are not run through Markdown, so a document is
always shown as text, never run. Feedback lines are written in the evaluation question-set format.
Leaves out: retrieval and answer wording (qa/), and any styling framework beyond Gradio's theme.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import gradio as gr

from qa.assistant import Assistant
from qa.config import Settings, get_settings
from qa.errors import InputError, QAError

log = logging.getLogger("qa.app")

UPLOAD_TYPES = [".txt", ".md", ".html", ".htm", ".pdf", ".docx"]
# Several users at once; each question is a short CPU burst (or a long LLM stream), so a few run
# together and nobody waits behind one long generation.
CONCURRENCY = 4
CONTEXT_CHARS = 260  # passage context shown on each side of a cited sentence
QUOTE_BLOCK_CHARS = 80  # quotes longer than this sit on their own lines in an answer

EXAMPLES = [
    "What did the Kremlin deny?",
    "ماذا نفى الكرملين؟",
    "Who did Lavrov negotiate with in Moscow?",
    "مع من تفاوض لافروف في موسكو؟",
]

MODE_LABELS = {
    "extractive": "Extractive: quotes the documents verbatim",
    "generative": "Generative: a local language model writes a cited answer",
}

LABELS = {
    "en": {
        "sources": "Sources",
        "para": "paragraph",
        "score": "score",
        "abstain": "Not in the documents",
        "closest": "Closest passage (not an answer)",
        "error": "Could not answer",
    },
    "ar": {
        "sources": "المصادر",
        "para": "الفقرة",
        "score": "الدرجة",
        "abstain": "غير موجود في الوثائق",
        "closest": "أقرب مقطع (ليس جواباً)",
        "error": "تعذّرت الإجابة",
    },
}

# System fonts only: the page makes no request beyond this server.
FONTS = [
    "system-ui",
    "-apple-system",
    "Segoe UI",
    "Noto Sans",
    "Noto Naskh Arabic",
    "DejaVu Sans",
    "sans-serif",
]

CSS = """
.qa-msg { unicode-bidi: plaintext; text-align: start; line-height: 1.6; }
.qa-user { font-weight: 500; }
.qa-quote { margin: .3em 0 .5em; padding: .05em .75em; text-align: start; unicode-bidi: plaintext;
  border-inline-start: 3px solid var(--color-accent-soft); }
.qa-ref { display: inline-block; font-size: .78em; font-weight: 700; line-height: 1; padding: .15em .35em;
  margin-inline-start: .15em; border-radius: .35em; vertical-align: .15em; unicode-bidi: isolate;
  background: var(--color-accent-soft); color: var(--color-accent); }
.qa-meta { margin-top: .5em; font-size: .82em; color: var(--body-text-color-subdued); }
.qa-note { margin-top: .4em; font-size: .82em; font-style: italic; color: var(--body-text-color-subdued); }
.qa-abstain { border-inline-start: 4px solid #d97706; padding: .1em .7em; }
.qa-abstain-title { font-weight: 700; color: #b45309; margin-bottom: .2em; }
.qa-closest { margin-top: .5em; font-size: .88em; color: var(--body-text-color-subdued); }
.qa-error { border-inline-start: 4px solid #dc2626; padding: .1em .7em; }
.qa-error-title { font-weight: 700; color: #b91c1c; }
.qa-streaming { opacity: .75; }
.qa-sources { display: flex; flex-direction: column; gap: .75em; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: .6em; padding: .6em .8em;
  background: var(--background-fill-secondary); }
.qa-src.qa-src-closest { border-style: dashed; opacity: .9; }
.qa-src-head { display: flex; flex-wrap: wrap; gap: .4em; align-items: baseline; font-size: .85em;
  color: var(--body-text-color-subdued); margin-bottom: .35em; }
.qa-src-doc { font-weight: 600; color: var(--body-text-color); overflow-wrap: anywhere; }
.qa-passage { unicode-bidi: plaintext; text-align: start; line-height: 1.75; margin: 0; }
.qa-passage mark { background: #fde68a; color: #1f2937; padding: .05em .15em; border-radius: .25em; }
.qa-status { font-size: .9em; padding: .2em 0; overflow-wrap: anywhere; }
.qa-empty { color: var(--body-text-color-subdued); font-size: .9em; }
.qa-section-title { font-weight: 600; font-size: .9em; margin: .2em 0 .1em; }
.qa-docs { width: 100%; border-collapse: collapse; font-size: .88em; border: none !important; }
.qa-docs td, .qa-docs th { padding: .35em .5em !important; border: none !important; text-align: start;
  border-bottom: 1px solid var(--border-color-primary) !important; background: none !important; }
.qa-docs th { font-weight: 600; color: var(--body-text-color-subdued); }
.qa-docs td.num { text-align: end; font-variant-numeric: tabular-nums; }
.qa-examples { gap: .4em !important; align-items: center; }
.qa-examples > button { flex: 0 1 auto !important; min-width: 0 !important; width: auto !important;
  border-radius: 999px !important; font-weight: 400 !important; padding: .3em .9em !important; }
#qa-header h1 { margin-bottom: 0; }
#qa-header p { margin-top: .2em; color: var(--body-text-color-subdued); }
"""


# ---------------------------------------------------------------------------------------------
# Formatting: plain data in, escaped HTML out


def esc(text: object) -> str:
    """Text as inert HTML: every markup character escaped, newlines kept."""
    return html.escape(str(text), quote=True).replace("\n", "<br>")


def labels(lang: str | None) -> dict[str, str]:
    """The UI words for an answer's language."""
    return LABELS.get(lang or "en", LABELS["en"])


def answer_record(answer) -> dict:
    """`Answer.to_dict()` plus each citation's surrounding passage, for the sources panel and exports."""
    data = answer.to_dict()
    for key in ("citations", "closest"):
        for row, cite in zip(data[key], getattr(answer, key)):
            row["passage"] = cite.passage
            row["passage_start"] = cite.passage_start
    return data


def answer_body(text: str, citations: list[dict]) -> str:
    """Answer text as escaped HTML: `[n]` markers become badges, each long «quote» its own block.

    A right-to-left quote wrapped inside a left-to-right sentence reads in a zigzag, so long quotes
    sit on their own lines and every piece takes its direction from its own text.
    """
    by_n = {c["n"]: c for c in citations}

    def badges(text_html: str) -> str:
        def badge(m: re.Match) -> str:
            c = by_n.get(int(m.group(1)))
            title = f' title="{esc(c["doc"])}, ¶{c["paragraph"] + 1}"' if c else ""
            return f'<span class="qa-ref"{title}>[{m.group(1)}]</span>'

        text_html = re.sub(r"«([^«»]*)»", r'<bdi dir="auto">«\1»</bdi>', text_html)
        return re.sub(r"\[(\d{1,2})\]", badge, text_html)

    parts = re.split(rf"«([^«»]{{{QUOTE_BLOCK_CHARS},}})»", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a long quote: shown exactly as it is, markers inside it left alone
            out.append(f'<div class="qa-quote" dir="auto">«{esc(part)}»</div>')
        elif part.strip():
            out.append(f'<div class="qa-lead" dir="auto">{badges(esc(part.strip()))}</div>')
    return "".join(out)


def user_html(question: str) -> str:
    """A user's question as a chat bubble, its direction taken from its own text."""
    return f'<div class="qa-msg qa-user" dir="auto">{esc(question)}</div>'


def answer_html(turn: dict) -> str:
    """An assistant bubble: the answer with [n] badges, an abstention, an error, or text still streaming."""
    if turn.get("error"):
        words = labels("en")
        return (
            f'<div class="qa-msg qa-error" dir="auto"><div class="qa-error-title">{words["error"]}</div>'
            f"{esc(turn['error'])}</div>"
        )
    data = turn.get("answer")
    if data is None:
        partial = turn.get("partial") or "…"
        return f'<div class="qa-msg qa-streaming" dir="auto">{esc(partial)}</div>'
    words = labels(data["answer_lang"])
    # The answer's language sets the bubble's direction; its pieces (quotes) still choose their own.
    dir_ = "rtl" if data["answer_lang"] == "ar" else "ltr"
    note = f'<div class="qa-note" dir="auto">{esc(data["note"])}</div>' if data.get("note") else ""
    if data["abstained"]:
        closest = ""
        if data["closest"]:
            c = data["closest"][0]
            closest = (
                f'<div class="qa-closest">{words["closest"]} (<bdi>{esc(c["doc"])}</bdi>, '
                f"{words['para']} {c['paragraph'] + 1}):"
                f'<div class="qa-quote" dir="auto">«{esc(_clip(c["quote"], 220))}»</div></div>'
            )
        return (
            f'<div class="qa-msg qa-abstain" dir="{dir_}"><div class="qa-abstain-title">{words["abstain"]}</div>'
            f"{esc(data['answer'])}{closest}{note}</div>"
        )
    body = answer_body(data["answer"], data["citations"])
    refs = " · ".join(
        f'<span class="qa-ref">[{c["n"]}]</span> <bdi>{esc(c["doc"])}</bdi>, {words["para"]} {c["paragraph"] + 1}'
        for c in data["citations"]
    )
    meta = f'<div class="qa-meta">{words["sources"]}: {refs}</div>' if refs else ""
    return f'<div class="qa-msg qa-answer" dir="{dir_}">{body}{meta}{note}</div>'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def passage_html(cite: dict) -> str:
    """The cited sentence, highlighted with <mark>, inside a window of its passage."""
    passage, quote = cite.get("passage") or cite["quote"], cite["quote"]
    start = cite["start"] - cite.get("passage_start", 0)
    if passage[start : start + len(quote)] != quote:
        start = max(passage.find(quote), 0)  # offsets disagree (never expected): fall back to search
    end = start + len(quote)
    before, after = passage[max(0, start - CONTEXT_CHARS) : start], passage[end : end + CONTEXT_CHARS]
    if start > CONTEXT_CHARS:
        before = "…" + before.split(" ", 1)[-1]
    if len(passage) - end > CONTEXT_CHARS:
        after = after.rsplit(" ", 1)[0] + "…"
    return (
        f'<p class="qa-passage" dir="auto">{esc(before)}<mark>{esc(passage[start:end])}</mark>'
        f"{esc(after)}</p>"
    )


def sources_html(turn: dict | None) -> str:
    """The sources panel for one turn: each citation with its document, paragraph, score and passage."""
    if not turn:
        return (
            '<div class="qa-empty">Ask a question: the sentences an answer cites appear here, '
            "highlighted in their paragraph, so you can check them.</div>"
        )
    data = turn.get("answer")
    if turn.get("error") or data is None:
        return '<div class="qa-empty">No sources for this message.</div>'
    words = labels(data["answer_lang"])
    cites, closest = data["citations"], data["abstained"] and data["closest"]
    if not cites and not closest:
        return '<div class="qa-empty">Nothing in the documents came close to this question.</div>'
    head_dir = "rtl" if data["answer_lang"] == "ar" else "ltr"
    parts = [f'<div class="qa-section-title" dir="auto">{esc(_clip(data["question"], 160))}</div>']
    if closest:
        parts.append(f'<div class="qa-section-title qa-closest" dir="auto">{words["closest"]}</div>')
    for c in cites or closest:
        tag = f'<span class="qa-ref">[{c["n"]}]</span>' if cites else ""
        parts.append(
            f'<article class="qa-src{"" if cites else " qa-src-closest"}" data-n="{c["n"]}">'
            f'<div class="qa-src-head" dir="{head_dir}">{tag}<bdi class="qa-src-doc">{esc(c["doc"])}</bdi>'
            f"<span>{words['para']} {c['paragraph'] + 1}</span>"
            f"<span>{words['score']} {c['score']:.2f}</span></div>{passage_html(c)}</article>"
        )
    parts.append('<div class="qa-empty">Click an answer in the chat to show its sources here.</div>')
    return f'<div class="qa-sources">{"".join(parts)}</div>'


def chat_messages(turns: list[dict]) -> list[dict]:
    """The chatbot's messages (user, assistant, user, …) for the conversation so far."""
    out = []
    for turn in turns:
        out.append({"role": "user", "content": user_html(turn["question"])})
        out.append({"role": "assistant", "content": answer_html(turn)})
    return out


def documents_html(docs) -> str:
    """The indexed documents as a small table (names escaped: a file name is user input too)."""
    if not docs:
        return '<div class="qa-empty">Nothing is indexed yet: upload a document below.</div>'
    rows = "".join(
        f'<tr><td dir="auto">{esc(d.id)}</td><td class="num">{d.chunks}</td>'
        f'<td class="num">{d.chars:,}</td></tr>'
        for d in docs
    )
    return (
        '<table class="qa-docs"><thead><tr><th>Document</th><th class="num">Passages</th>'
        f'<th class="num">Characters</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def conversation_markdown(turns: list[dict]) -> str:
    """The conversation with its citations as Markdown (document text quoted as it is)."""
    lines = [f"# Conversation exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    for i, turn in enumerate(turns, start=1):
        lines += [f"## {i}. {turn['question']}", ""]
        data = turn.get("answer")
        if turn.get("error") or data is None:
            lines += [f"_Error: {turn.get('error') or 'no answer'}_", ""]
            continue
        lines += [data["answer"], ""]
        if data.get("note"):
            lines += [f"_{data['note']}_", ""]
        shown = data["citations"] or data["closest"]
        if shown:
            lines += ["Sources:" if data["citations"] else "Closest passages (not an answer):", ""]
        for c in shown:
            lines.append(
                f"- [{c['n']}] {c['doc']}, paragraph {c['paragraph'] + 1}, characters {c['start']}–{c['end']}, "
                f"score {c['score']:.2f}"
            )
            lines.append(f"  > {c['quote']}")
        lines += ["", f"_mode: {data['mode']}_", ""]
    return "\n".join(lines)


def conversation_json(turns: list[dict]) -> str:
    """The conversation as JSON: each turn's question and its full answer record."""
    payload = {
        "exported": datetime.now(UTC).isoformat(timespec="seconds"),
        "turns": [
            {"id": t["id"], "question": t["question"], "answer": t.get("answer"), "error": t.get("error")}
            for t in turns
        ],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2)


def feedback_record(turns: list[dict], index: int, rating: str) -> dict:
    """One feedback line in the evaluation question-set shape (id, question, lang, answers, evidence…)."""
    turn = turns[index]
    data = turn["answer"]
    record = {
        "id": turn["id"],
        "question": turn["question"],
        "lang": data["question_lang"],
        "doc": data["citations"][0]["doc"] if data["citations"] else None,
        "answers": [] if data["abstained"] else [data["answer"]],
        "evidence": [c["quote"] for c in data["citations"]],
        "rating": rating,
        "citations": data["citations"],
        "mode": data["mode"],
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if data["abstained"]:
        record["unanswerable"] = True
    if index > 0:
        # A follow-up: the eval runner rebuilds its history from the earlier turns.
        record["follows"] = turns[index - 1]["id"]
        record["history"] = [[t["question"], t["answer"]["answer"]] for t in turns[:index] if t.get("answer")]
    return record


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """Users from QA_AUTH: "user:password", or a path to a file of such lines; None when unset."""
    if not value:
        return None
    path = Path(value).expanduser()
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [value]
    users = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise InputError("QA_AUTH must be user:password, or a file with one user:password per line.")
        users.append((user, password))
    if not users:
        raise InputError(f"QA_AUTH file {path} lists no user:password line.")
    return users


# ---------------------------------------------------------------------------------------------
# The app


class Warmup:
    """Load the embedding model once, in the background at launch; requests wait for it if early."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.done = threading.Event()
        self.error: QAError | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="qa-warmup", daemon=True).start()

    def _run(self) -> None:
        try:
            self.assistant.embedder.encode_query("warm-up")
            self.assistant.retriever.catalog()
        except QAError as exc:
            self.error = exc
        except Exception as exc:  # shown to users as one sentence; the details go to the log
            log.exception("warm-up failed")
            self.error = QAError(f"The assistant could not start ({type(exc).__name__}); see the server log.")
        finally:
            self.done.set()

    def wait(self) -> None:
        """Block until the model is loaded; raise its `QAError` if it could not be."""
        self.start()
        self.done.wait()
        if self.error:
            raise self.error


def register_modes(assistant: Assistant) -> None:
    """Add the optional answer modes (generative) when their module is installed."""
    try:
        from qa import llm
    except ImportError:
        return
    try:
        llm.register(assistant)
    except QAError as exc:
        log.warning("generative mode unavailable: %s", exc)


def build_app(assistant: Assistant | None = None, settings: Settings | None = None) -> gr.Blocks:
    """The Gradio Blocks for one assistant: chat, sources, documents and settings; nothing is loaded yet."""
    settings = settings or (assistant.settings if assistant else get_settings())
    if assistant is None:
        assistant = Assistant(settings)
        register_modes(assistant)
    warmup = Warmup(assistant)
    export_dir = Path(tempfile.mkdtemp(prefix="qa-export-"))
    feedback_lock = threading.Lock()
    modes = list(assistant.modes)
    default_mode = settings.answer_mode if settings.answer_mode in modes else modes[0]

    def doc_updates(status: str | None = None):
        docs = assistant.documents()
        ids = [d.id for d in docs]
        return (
            documents_html(docs),
            gr.update(choices=ids, value=None),
            f'<div class="qa-status" dir="auto">{esc(status)}</div>' if status is not None else gr.skip(),
        )

    def on_load():
        try:
            return doc_updates()
        except QAError as exc:
            gr.Warning(str(exc))
            return documents_html([]), gr.skip(), f'<div class="qa-status">{esc(exc)}</div>'

    def respond(question: str, turns: list[dict], mode: str, k: float, lang: str):
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question about the documents first.")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        history = [(t["question"], t["answer"]["answer"]) for t in turns if t.get("answer")]
        turn = {
            "id": uuid.uuid4().hex[:12],
            "question": question,
            "answer": None,
            "error": None,
            "partial": "",
        }
        turns = [*turns, turn]
        waiting = (
            "Searching the documents…" if warmup.done.is_set() else "Loading the model (once per start)…"
        )
        yield chat_messages(turns), turns, f'<div class="qa-empty">{waiting}</div>', ""
        try:
            warmup.wait()
            for item in assistant.stream(
                question, k=int(k), mode=mode, answer_language=lang, history=history
            ):
                if isinstance(item, str):
                    turn["partial"] += item
                    yield chat_messages(turns), turns, gr.skip(), gr.skip()
                else:
                    turn["answer"] = answer_record(item)
        except QAError as exc:
            turn["error"] = str(exc)
            gr.Warning(str(exc))
        except Exception:
            log.exception("answering %r failed", question)
            turn["error"] = "Something went wrong while answering; the details are in the server log."
        turn.pop("partial", None)
        yield chat_messages(turns), turns, sources_html(turn), gr.skip()

    def show_sources(turns: list[dict], evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if 0 <= index // 2 < len(turns):
            return sources_html(turns[index // 2])
        return gr.skip()

    def on_feedback(turns: list[dict], evt: gr.LikeData):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        turn_index = index // 2
        if evt.liked is None or not (0 <= turn_index < len(turns)) or not turns[turn_index].get("answer"):
            return
        liked = evt.liked if isinstance(evt.liked, bool) else str(evt.liked).lower() in ("like", "up", "true")
        record = feedback_record(turns, turn_index, "up" if liked else "down")
        path = Path(settings.feedback_path)
        with feedback_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        gr.Info("Thanks: your rating was saved.")

    def exports(turns: list[dict]):
        if not turns:
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        stem = export_dir / f"conversation-{turns[0]['id']}"
        md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
        md.write_text(conversation_markdown(turns), encoding="utf-8")
        js.write_text(conversation_json(turns), encoding="utf-8")
        return gr.update(value=str(md), interactive=True), gr.update(value=str(js), interactive=True)

    def clear():
        return [], [], sources_html(None)

    def ingest_files(files, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 (Gradio injects it)
        if not files:
            return gr.skip(), gr.skip(), gr.skip(), None
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        progress(0, desc=f"Reading {len(paths)} file(s)…")
        # Documents are identified by file name: keep the uploaded name, not Gradio's temp name.
        staging = Path(tempfile.mkdtemp(prefix="qa-upload-"))
        try:
            names = set()
            for p in paths:
                if p.name in names:
                    raise InputError(f"Two uploaded files share the name {p.name}.")
                names.add(p.name)
                shutil.copy(p, staging / p.name)
            warmup.wait()
            progress(0.1, desc="Indexing…")
            report = assistant.ingest([staging / n for n in sorted(names)], progress=True)
        except QAError as exc:
            gr.Warning(str(exc))
            return *doc_updates(f"⚠ {exc}"), None
        except Exception as exc:  # a parser failing on a malformed file: one sentence, details logged
            log.exception("ingesting %s failed", [p.name for p in paths])
            message = (
                f"⚠ Could not index the upload ({type(exc).__name__}); the details are in the server log."
            )
            gr.Warning(message)
            return *doc_updates(message), None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        parts = [
            f"{label}: {', '.join(ids)}"
            for label, ids in (
                ("Added", report.added),
                ("Replaced", report.replaced),
                ("Already indexed, unchanged", report.unchanged),
            )
            if ids
        ]
        return *doc_updates("; ".join(parts) + "."), None

    def remove_doc(doc_id: str | None):
        if not doc_id:
            gr.Warning("Choose a document to remove.")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            removed = assistant.remove(doc_id)
        except QAError as exc:
            gr.Warning(str(exc))
            return doc_updates(f"⚠ {exc}")
        return doc_updates(f"Removed {doc_id}." if removed else f"{doc_id} was not indexed.")

    def api_ask(question: str, mode: str = default_mode, k: int = settings.k, lang: str = "auto") -> dict:
        """Answer one question; the JSON of `qa ask --json` (Answer.to_dict())."""
        try:
            warmup.wait()
            return assistant.ask(question, k=int(k), mode=mode or None, answer_language=lang).to_dict()
        except QAError as exc:
            raise gr.Error(str(exc)) from None

    def api_documents() -> list[dict]:
        """The indexed documents: id, chunks, chars, sha256."""
        return [vars(d) for d in assistant.documents()]

    with gr.Blocks(title="Document Q&A", analytics_enabled=False) as demo:
        demo.warmup = warmup  # launch() starts it; tests can wait on it
        turns = gr.State([])
        with gr.Column(elem_id="qa-header"):
            gr.HTML(
                "<h1>Ask the documents</h1><p>Answers quote the indexed documents word for word, in English "
                "or Arabic. Each <span class='qa-ref'>[n]</span> points to a sentence you can check under "
                "Sources.</p>"
            )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="qa-chat",
                    label="Conversation",
                    show_label=False,
                    height=560,
                    render_markdown=False,  # messages are escaped HTML built here, never Markdown
                    sanitize_html=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    buttons=[],
                    feedback_options=("Like", "Dislike"),
                    placeholder="**Ask a question about the documents**, in English or Arabic. "
                    "Try one of the examples below.",
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="qa-question",
                        show_label=False,
                        placeholder="Ask a question… / اطرح سؤالاً…",
                        container=False,
                        scale=5,
                        lines=1,
                        max_lines=4,
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=0, min_width=110, elem_id="qa-send")
                with gr.Row(elem_classes="qa-examples"):
                    example_buttons = [
                        gr.Button(q, size="sm", variant="secondary", elem_classes="qa-example")
                        for q in EXAMPLES
                    ]
                with gr.Row():
                    clear_btn = gr.Button("New conversation", size="sm", variant="secondary")
                    export_md = gr.DownloadButton("Export Markdown", size="sm", interactive=False)
                    export_js = gr.DownloadButton("Export JSON", size="sm", interactive=False)
            with gr.Column(scale=2, min_width=340), gr.Tabs():
                with gr.Tab("Sources", id="sources"):
                    sources = gr.HTML(sources_html(None), elem_id="qa-sources")
                with gr.Tab("Documents", id="documents"):
                    docs_view = gr.HTML(elem_id="qa-docs")
                    upload = gr.File(
                        label="Add documents (.txt .md .html .pdf .docx)",
                        file_count="multiple",
                        file_types=UPLOAD_TYPES,
                        type="filepath",
                        elem_id="qa-upload",
                    )
                    doc_status = gr.HTML(elem_id="qa-doc-status")
                    doc_choice = gr.Dropdown(label="Remove a document", choices=[], elem_id="qa-remove")
                    remove_btn = gr.Button("Remove", variant="stop", size="sm")
                with gr.Tab("Settings", id="settings"):
                    mode = gr.Radio(
                        [(MODE_LABELS.get(m, m), m) for m in modes], value=default_mode, label="Answer mode"
                    )
                    k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages to search (k)")
                    lang = gr.Radio(
                        [("Auto (the question's language)", "auto"), ("English", "en"), ("العربية", "ar")],
                        value=settings.answer_language,
                        label="Answer language",
                    )

        private = {"api_visibility": "private"}
        # Every way of asking shares one pool of CONCURRENCY workers (the queue's default limit).
        ask_inputs = [question, turns, mode, k, lang]
        ask_outputs = [chatbot, turns, sources, question]
        for trigger in (send.click, question.submit):
            trigger(respond, ask_inputs, ask_outputs, concurrency_id="answer", **private).then(
                exports, turns, [export_md, export_js], **private
            )
        for button, text in zip(example_buttons, EXAMPLES):
            button.click(lambda text=text: text, None, question, queue=False, **private).then(
                respond, ask_inputs, ask_outputs, concurrency_id="answer", **private
            ).then(exports, turns, [export_md, export_js], **private)
        chatbot.select(show_sources, turns, sources, **private)
        chatbot.like(on_feedback, turns, None, **private)
        chatbot.clear(clear, None, [chatbot, turns, sources], **private).then(
            exports, turns, [export_md, export_js], **private
        )
        clear_btn.click(clear, None, [chatbot, turns, sources], **private).then(
            exports, turns, [export_md, export_js], **private
        )
        doc_outputs = [docs_view, doc_choice, doc_status]
        upload.upload(
            ingest_files,
            upload,
            [*doc_outputs, upload],
            concurrency_limit=1,
            concurrency_id="ingest",
            **private,
        )
        remove_btn.click(remove_doc, doc_choice, doc_outputs, concurrency_id="ingest", **private)
        demo.load(on_load, None, doc_outputs, show_progress="hidden", **private)
        gr.api(api_ask, api_name="ask", concurrency_id="answer")
        gr.api(api_documents, api_name="documents")
    return demo


def theme() -> gr.themes.Base:
    """A quiet blue-slate theme with system fonts."""
    return gr.themes.Soft(
        primary_hue="blue", neutral_hue="slate", font=FONTS, font_mono=["ui-monospace", "monospace"]
    )


def launch(
    assistant: Assistant | None = None, settings: Settings | None = None, *, block: bool = True
) -> tuple[gr.Blocks, str]:
    """Start the server: warm the model in the background, bind, print the URL; block unless told not to."""
    settings = settings or (assistant.settings if assistant else get_settings())
    users = parse_auth(settings.auth)
    host = settings.host if users else "127.0.0.1"
    if not users and settings.host != "127.0.0.1":
        print(f"QA_HOST={settings.host} ignored: set QA_AUTH to serve beyond this machine.", file=sys.stderr)
    demo = build_app(assistant, settings)
    demo.warmup.start()
    demo.queue(default_concurrency_limit=CONCURRENCY)
    _, url, _ = demo.launch(
        server_name=host,
        server_port=settings.port,
        auth=users,
        auth_message="Sign in to ask the documents." if users else None,
        prevent_thread_lock=True,
        show_error=False,
        quiet=True,
        ssr_mode=False,
        footer_links=["api"],
        theme=theme(),
        css=CSS,
    )
    if host == "0.0.0.0":
        url = f"http://127.0.0.1:{settings.port}/"
    print(f"Document Q&A running at {url} (login {'on' if users else 'off'})", flush=True)
    if block:
        demo.block_thread()
    return demo, url


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        launch()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
