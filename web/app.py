"""The web app: builds the Gradio page over one `Assistant` and launches it.

Like smolagents' gradio_ui.py, this module only turns typed results into components: `Handlers`
keeps the conversation as `web.render.Turn`s in `gr.State`, asks the assistant, and hands every
piece of HTML to `web.render`; `build_app()` lays out the page and wires the events; `launch()`
warms the embedding models in the background, serves the page mounted on the FastAPI app of
`web.api` (the OpenAI-compatible and REST API) with uvicorn on one port, binds 127.0.0.1 (or QA_HOST
once QA_AUTH turns login on) and prints the URL. Each answer saves the conversation
(`qa.conversations`, per signed-in user); the Conversations tab reopens, renames and deletes them. Ratings go to `QA_FEEDBACK_PATH` as question-set lines
(`qa.feedback`). The Sources panel translates the cited sentences of the turn it
shows on request (`Assistant.translate`); the Documents tab shows each document's overview (its
central sentences, `qa.overview.central_sentences`) with a button that asks about it in the chat.

Example:
    demo, url = launch(block=False)

Leaves out: HTML, CSS and exports (web/render.py), retrieval and answer wording (qa/), and any
styling framework beyond Gradio's theme.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn

from qa import feedback as qfeedback
from qa import overview as qoverview
from qa import plugins, reader
from qa.assistant import Assistant
from qa.config import Settings, get_settings
from qa.conversations import ConversationStore, StoredTurn
from qa.errors import InputError, QAError
from qa.ingest import SUPPORTED
from qa.stream import Delta, Draft
from web import render
from web.render import Turn
from web.uploads import index_uploads

log = logging.getLogger("qa.app")

UPLOAD_TYPES = list(SUPPORTED)
# Several users at once; each question is a short CPU burst (or a long LLM stream), so a few run
# together and nobody waits behind one long generation.
CONCURRENCY = 4

EXAMPLES = [
    "What is this article about?",  # the overview: how NotebookLM opens a notebook
    "What did the Kremlin deny?",
    "ماذا نفى الكرملين؟",
    "Who did Lavrov negotiate with in Moscow?",
    "مع من تفاوض لافروف في موسكو؟",
]

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

PRIVATE = {"api_visibility": "private"}  # UI events are not part of the public API

# The Documents tab shows an overview for the first OVERVIEW_DOCS documents; its button asks this.
OVERVIEW_DOCS = 10
SUMMARY_QUESTION = "What is this document about?"


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


class Warmup:
    """Load the embedding model once, in the background at launch; requests wait for it if early."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.done = threading.Event()
        self.error: QAError | None = None
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Start loading in a daemon thread (once; later calls do nothing)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="qa-warmup", daemon=True).start()

    def _run(self) -> None:
        try:
            self.assistant.embedder.encode_query("warm-up")
            if (second := self.assistant.second_embedder) is not None:  # it rescores every question
                second.encode_query("warm-up")
            self.assistant.retriever.lexical()
        except QAError as exc:
            self.error = exc
        except Exception as exc:  # shown to users as one sentence; the details go to the log
            log.exception("warm-up failed")
            self.error = QAError(f"The assistant could not start ({type(exc).__name__}); see the server log.")
        finally:
            self.done.set()
        # Then the short answer's LLM, after `done`: quotes need only the embedders. A first
        # question asked meanwhile waits for this (one llama.cpp context) instead of redoing it.
        try:
            reader.warm(self.assistant)
        except Exception:  # the first question reports what is wrong, in its own words
            log.info("the reader was not warmed up", exc_info=True)

    def wait(self) -> None:
        """Block until the model is loaded; raise its `QAError` if it could not be."""
        self.start()
        self.done.wait()
        if self.error:
            raise self.error


def _owner(request: gr.Request | None) -> str:
    """Whose conversations: the signed-in user's name, "" without login."""
    return (request.username if request is not None else None) or ""


def _turn_index(evt: gr.EventData) -> int:
    """The conversation turn a chatbot event points at (two messages per turn)."""
    index = evt.index if isinstance(evt.index, int) else evt.index[0]
    return index // 2


def translate_button(turn: Turn | None) -> Any:
    """The Sources panel's translate control for the turn it shows: visible while some cited sentence
    of its answer is in another language and not translated yet; labelled in Arabic too for Arabic."""
    answer = turn.answer if turn is not None and not turn.error else None
    if not render.untranslated(answer):
        return gr.update(visible=False)
    return gr.update(value=render.translate_label(answer.answer_lang), visible=True, interactive=True)


def shown_turn(turns: list[Turn], shown: str | None) -> Turn | None:
    """The turn the Sources panel shows: the one with id `shown`, else the last answered turn."""
    for turn in turns:
        if turn.id == shown:
            return turn
    return next((t for t in reversed(turns) if t.answer is not None), None)


class Handlers:
    """The page's event handlers over one assistant: inputs from components, rendered updates out.

    Each method is one event; the conversation is a list of `Turn`s kept in `gr.State`, replaced
    (never mutated) on every update.
    """

    def __init__(self, assistant: Assistant, settings: Settings) -> None:
        self.assistant = assistant
        self.settings = settings
        self.warmup = Warmup(assistant)
        self.export_dir = Path(tempfile.mkdtemp(prefix="qa-export-"))
        self._overviews: dict[tuple[str, str], str] = {}  # (doc id, sha256) -> its overview's HTML
        self.conversations = ConversationStore(settings.conversations_path)

    # -- conversation

    def respond(self, question: str, turns: list[Turn], mode: str, k: float, lang: str) -> Iterator[tuple]:
        """Ask one question: yields (chat, turns, sources, question box, shown turn id, translate
        button) as the answer streams in; the Sources panel follows the new turn.

        A `Draft` (the quote before its short answer) is shown marked as still working; the final
        answer, which may add the short answer or abstain instead, replaces it.
        """
        question = (question or "").strip()
        if not question:
            gr.Warning("Type a question about the documents first.")
            yield (gr.skip(),) * 6
            return
        history = [(t.question, t.answer.answer) for t in turns if t.answer]
        earlier, turn = list(turns), Turn.start(question)
        waiting = (
            "Searching the documents…" if self.warmup.done.is_set() else "Loading the model (once per start)…"
        )
        yield (
            render.chat_messages([*earlier, turn]),
            [*earlier, turn],
            render.notice_html(waiting),
            "",
            turn.id,
            gr.update(visible=False),
        )
        try:
            self.warmup.wait()
            stream = self.assistant.stream(
                question, k=int(k), mode=mode, answer_language=lang, history=history
            )
            for event in stream.events():
                match event:
                    case Delta(text):
                        turn = dataclasses.replace(turn, partial=turn.partial + text)
                    case Draft(draft):  # shown as still working until the final answer replaces it
                        turn = dataclasses.replace(turn, answer=draft, draft=True)
                yield render.chat_messages([*earlier, turn]), [*earlier, turn], *(gr.skip(),) * 4
            turn = dataclasses.replace(turn, answer=stream.answer())
        except QAError as exc:
            log.info("question not answered: %s", exc)  # a user's input: one line, no traceback
            turn = dataclasses.replace(turn, answer=None, error=str(exc))  # a draft is no answer
            gr.Warning(str(exc))
        except Exception:
            log.exception("answering %r failed", question)
            turn = dataclasses.replace(
                turn,
                answer=None,
                error="Something went wrong while answering; the details are in the server log.",
            )
        turns = [*earlier, dataclasses.replace(turn, partial="", draft=False)]
        last = turns[-1]
        yield (
            render.chat_messages(turns),
            turns,
            render.sources_html(last),
            gr.skip(),
            last.id,
            translate_button(last),
        )

    def show_sources(self, turns: list[Turn], evt: gr.SelectData) -> tuple[Any, Any, Any]:
        """A clicked message: show its turn's sources; returns (sources, shown turn id, translate button)."""
        index = _turn_index(evt)
        if not 0 <= index < len(turns):
            return gr.skip(), gr.skip(), gr.skip()
        turn = turns[index]
        return render.sources_html(turn), turn.id, translate_button(turn)

    def translate(self, turns: list[Turn], shown: str | None) -> Iterator[tuple]:
        """Translate the cited sentences of the turn the Sources panel shows into its answer's language.

        Yields (sources, translated turn, translate button): first a status line while the language
        model works, then the sources with each translation under its passage. The translated turn goes
        to a holding state that `keep_translation` then puts into the conversation (so a question
        asked meanwhile is not lost). A `QAError` (the LLM unusable) is a warning of one sentence.
        """
        turn = shown_turn(turns, shown)
        if turn is None or not render.untranslated(turn.answer):
            gr.Info("Nothing to translate: the cited sentences are already in the answer's language.")
            yield gr.skip(), None, translate_button(turn)
            return
        busy = gr.update(value="Translating…", interactive=False)
        yield render.sources_html(turn, working=render.translating_text(turn.answer)), gr.skip(), busy
        try:
            self.warmup.wait()  # the check embeds the translation: the model must be loaded once
            turn = dataclasses.replace(turn, answer=self.assistant.translate(turn.answer))
        except QAError as exc:
            gr.Warning(str(exc))
            yield render.sources_html(turn), None, translate_button(turn)
            return
        except Exception:
            log.exception("translating the citations of %r failed", turn.question)
            gr.Warning("The cited sentences could not be translated; the details are in the server log.")
            yield render.sources_html(turn), None, translate_button(turn)
            return
        yield render.sources_html(turn), turn, translate_button(turn)

    def keep_translation(self, turns: list[Turn], translated: Turn | None) -> Any:
        """The conversation with the translated turn in place of its old one (by id; a new list)."""
        if translated is None or not any(t.id == translated.id for t in turns):
            return gr.skip()
        return [translated if t.id == translated.id else t for t in turns]

    def on_feedback(self, turns: list[Turn], evt: gr.LikeData) -> None:
        """A thumbs up or down: append the turn as a question-set line to the feedback file."""
        index = _turn_index(evt)
        if evt.liked is None or not (0 <= index < len(turns)) or turns[index].answer is None:
            return
        liked = evt.liked if isinstance(evt.liked, bool) else str(evt.liked).lower() in ("like", "up", "true")
        qfeedback.save(Path(self.settings.feedback_path), turns, index, rating="up" if liked else "down")
        gr.Info("Thanks: your rating was saved.")

    def exports(self, turns: list[Turn]) -> tuple[Any, Any]:
        """The Markdown and JSON download buttons for the conversation (disabled when it is empty)."""
        if not turns:
            return gr.update(value=None, interactive=False), gr.update(value=None, interactive=False)
        stem = self.export_dir / f"conversation-{turns[0].id}"
        md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
        md.write_text(render.conversation_markdown(turns), encoding="utf-8")
        js.write_text(render.conversation_json(turns), encoding="utf-8")
        return gr.update(value=str(md), interactive=True), gr.update(value=str(js), interactive=True)

    def clear(self) -> tuple[list, list[Turn], str, None, Any, None, Any]:
        """A new conversation: empty chat and state, the sources panel's hint, no translate control,
        no saved conversation open (the list keeps its entries, none selected)."""
        return [], [], render.sources_html(None), None, gr.update(visible=False), None, gr.update(value=None)

    # -- saved conversations (qa.conversations; each user sees their own)

    def saved_list(self, request: gr.Request | None = None, *, value: str | None = None) -> Any:
        """The saved-conversations list for the signed-in user (newest first), `value` selected."""
        convs = self.conversations.list(owner=_owner(request))
        return gr.update(choices=[(render.conversation_label(c), c.id) for c in convs], value=value)

    def save_conversation(self, turns: list[Turn], conversation_id: str | None, request: gr.Request) -> tuple:
        """After each answer: save the whole conversation (a new one at its first answer).

        Returns (the conversation's id, the list with it selected, its name in the rename box).
        """
        if not turns:
            return gr.skip(), gr.skip(), gr.skip()
        stored = [StoredTurn(t.id, t.question, t.answer, t.error) for t in turns]
        try:
            saved = self.conversations.save(conversation_id, stored, owner=_owner(request))
        except QAError as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip(), gr.skip()
        return saved.id, self.saved_list(request, value=saved.id), saved.title

    def open_conversation(self, conversation_id: str | None, request: gr.Request) -> tuple:
        """A conversation picked in the list, reopened with its sources: (chat, turns, sources, shown turn
        id, translate button, conversation id, its name in the rename box)."""
        if not conversation_id:
            return (gr.skip(),) * 7
        owner = _owner(request)
        try:
            stored = self.conversations.load(conversation_id, owner=owner)
        except QAError as exc:
            gr.Warning(str(exc))
            return (gr.skip(),) * 7
        turns = [Turn(t.id, t.question, t.answer, t.error) for t in stored]
        last = shown_turn(turns, None)
        title = next((c.title for c in self.conversations.list(owner=owner) if c.id == conversation_id), "")
        return (
            render.chat_messages(turns),
            turns,
            render.sources_html(last),
            last.id if last else None,
            translate_button(last),
            conversation_id,
            title,
        )

    def rename_conversation(self, conversation_id: str | None, title: str, request: gr.Request) -> Any:
        """Rename the open conversation; returns the list (a warning of one sentence when it cannot)."""
        if not conversation_id:
            gr.Warning("Open a saved conversation (or ask a question) first.")
            return gr.skip()
        try:
            self.conversations.rename(conversation_id, title or "", owner=_owner(request))
        except QAError as exc:
            gr.Warning(str(exc))
            return gr.skip()
        return self.saved_list(request, value=conversation_id)

    def delete_conversation(self, conversation_id: str | None, request: gr.Request) -> tuple:
        """Delete the open conversation and start a new one: the `clear` outputs, then the list."""
        if not conversation_id:
            gr.Warning("Open a saved conversation first.")
            return (gr.skip(),) * 8
        self.conversations.delete(conversation_id, owner=_owner(request))
        *cleared, _, _ = self.clear()
        return *cleared, None, self.saved_list(request), ""

    # -- documents

    def documents(self, status: str | None = None) -> tuple[Any, Any, Any]:
        """(documents table, remove choices, status line) after a change; the status is kept if None."""
        docs = self.assistant.documents()
        return (
            render.documents_html(docs, overviews=OVERVIEW_DOCS),
            gr.update(choices=[d.id for d in docs], value=None),
            render.status_html(status) if status is not None else gr.skip(),
        )

    def on_load(self) -> tuple[Any, Any, Any]:
        """The page opened: list the documents (or say why they cannot be listed)."""
        try:
            return self.documents()
        except QAError as exc:
            gr.Warning(str(exc))
            return render.documents_html([]), gr.skip(), render.status_html(str(exc))

    def overviews(self) -> Iterator[list]:
        """The overview slots under the documents table: OVERVIEW_DOCS accordions, then their contents.

        Yields the accordions (one per document, titled with its name) with their contents at once when
        known, or a placeholder, then (once the embedding model is warm: the retriever needs it) the
        central sentences of each document. Kept per document version, so a refresh costs nothing.
        """
        try:
            docs = self.assistant.documents()[:OVERVIEW_DOCS]
        except QAError:
            yield [gr.update(visible=False)] * (2 * OVERVIEW_DOCS)
            return
        known = {d.id: self._overviews.get((d.id, d.sha256)) for d in docs}
        waiting = render.notice_html("Finding its central sentences…")
        accordions = [gr.update(label=f"Overview · {d.id}", visible=True) for d in docs] + [
            gr.update(visible=False)
        ] * (OVERVIEW_DOCS - len(docs))
        bodies = [known[d.id] or waiting for d in docs] + [""] * (OVERVIEW_DOCS - len(docs))
        yield accordions + bodies
        if all(known.values()):
            return
        try:
            self.warmup.wait()
            for d in docs:
                if not known[d.id]:
                    sentences = qoverview.central_sentences(self.assistant.retriever, d.id)
                    known[d.id] = self._overviews[d.id, d.sha256] = render.overview_html(sentences)
        except QAError as exc:
            known = {i: html or render.notice_html(f"No overview: {exc}") for i, html in known.items()}
        except Exception as exc:
            log.exception("overviews failed")
            message = f"No overview ({type(exc).__name__}); the details are in the server log."
            known = {i: html or render.notice_html(message) for i, html in known.items()}
        bodies = [known[d.id] for d in docs] + [""] * (OVERVIEW_DOCS - len(docs))
        yield [gr.skip()] * OVERVIEW_DOCS + bodies

    def ingest_files(self, files, progress=gr.Progress(track_tqdm=True)) -> tuple:  # noqa: B008
        """Index uploaded files under their own names; returns the document updates and clears the upload.

        `progress` is Gradio's: it injects a tracker for a parameter with this default.
        """
        if not files:
            return gr.skip(), gr.skip(), gr.skip(), None
        paths = [Path(f if isinstance(f, str) else f.name) for f in files]
        progress(0, desc=f"Reading {len(paths)} file(s)…")
        try:
            status = index_uploads(self.assistant, paths, ready=self.warmup.wait)
        except QAError as exc:
            gr.Warning(str(exc))
            return *self.documents(f"⚠ {exc}"), None
        return *self.documents(status), None

    def remove_doc(self, doc_id: str | None) -> tuple[Any, Any, Any]:
        """Remove the chosen document from the index."""
        if not doc_id:
            gr.Warning("Choose a document to remove.")
            return gr.skip(), gr.skip(), gr.skip()
        try:
            removed = self.assistant.remove(doc_id)
        except QAError as exc:
            gr.Warning(str(exc))
            return self.documents(f"⚠ {exc}")
        return self.documents(f"Removed {doc_id}." if removed else f"{doc_id} was not indexed.")


@dataclasses.dataclass(frozen=True)
class Page:
    """The components events read from or write to."""

    turns: gr.State
    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    examples: list[gr.Button]
    clear: gr.Button
    export_md: gr.DownloadButton
    export_js: gr.DownloadButton
    sources: gr.HTML
    shown: gr.State
    translate: gr.Button
    translated: gr.State
    docs_view: gr.HTML
    overview_boxes: list[gr.Accordion]
    overview_views: list[gr.HTML]
    summarize: list[gr.Button]
    upload: gr.File
    doc_status: gr.HTML
    doc_choice: gr.Dropdown
    remove: gr.Button
    mode: gr.Radio
    k: gr.Slider
    lang: gr.Radio
    conversation: gr.State
    saved: gr.Radio
    saved_name: gr.Textbox
    rename: gr.Button
    delete: gr.Button


def _layout(settings: Settings, *, default_mode: str) -> Page:
    """The page's components, inside the current `gr.Blocks`: chat on the left, tabs on the right."""
    turns = gr.State([])
    shown = gr.State(None)  # the id of the turn the Sources panel shows
    translated = gr.State(None)  # a translated turn on its way into `turns` (Handlers.keep_translation)
    conversation = gr.State(None)  # the id of the saved conversation on screen (None: not saved yet)
    with gr.Column(elem_id="qa-header"):
        gr.HTML(render.HEADER_HTML)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                elem_id="qa-chat",
                label="Conversation",
                show_label=False,
                height=560,
                render_markdown=False,  # messages are escaped HTML from web.render, never Markdown
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
                examples = [
                    gr.Button(q, size="sm", variant="secondary", elem_classes="qa-example") for q in EXAMPLES
                ]
            with gr.Row():
                clear = gr.Button("New conversation", size="sm", variant="secondary")
                export_md = gr.DownloadButton("Export Markdown", size="sm", interactive=False)
                export_js = gr.DownloadButton("Export JSON", size="sm", interactive=False)
        with gr.Column(scale=2, min_width=340), gr.Tabs():
            with gr.Tab("Sources", id="sources"):
                sources = gr.HTML(render.sources_html(None), elem_id="qa-sources")
                translate = gr.Button(
                    render.translate_label("en"),
                    size="sm",
                    variant="secondary",
                    visible=False,
                    elem_id="qa-translate",
                )
            with gr.Tab("Documents", id="documents"):
                docs_view = gr.HTML(elem_id="qa-docs")
                overview_boxes, overview_views, summarize = [], [], []
                for i in range(OVERVIEW_DOCS):
                    with gr.Accordion(
                        "Overview", open=False, visible=False, elem_classes="qa-overview-box"
                    ) as box:
                        overview_views.append(gr.HTML(elem_id=f"qa-overview-{i}"))
                        summarize.append(
                            gr.Button(
                                "Summarize this document",
                                size="sm",
                                variant="secondary",
                                elem_classes="qa-summarize",
                            )
                        )
                    overview_boxes.append(box)
                upload = gr.File(
                    label="Add documents (.txt .md .html .pdf .docx, scans and photos: .png .jpg .tif)",
                    file_count="multiple",
                    file_types=UPLOAD_TYPES,
                    type="filepath",
                    elem_id="qa-upload",
                )
                doc_status = gr.HTML(elem_id="qa-doc-status")
                doc_choice = gr.Dropdown(label="Remove a document", choices=[], elem_id="qa-remove")
                remove = gr.Button("Remove", variant="stop", size="sm")
            with gr.Tab("Conversations", id="conversations"):
                saved = gr.Radio(
                    [],
                    value=None,
                    label="Saved conversations (each answer is saved; pick one to reopen it)",
                    elem_id="qa-saved",
                )
                with gr.Row(equal_height=True):
                    saved_name = gr.Textbox(
                        show_label=False,
                        placeholder="Name",
                        container=False,
                        scale=4,
                        elem_id="qa-saved-name",
                    )
                    rename = gr.Button("Rename", size="sm", scale=0, min_width=90, elem_id="qa-rename")
                    delete = gr.Button(
                        "Delete", size="sm", variant="stop", scale=0, min_width=90, elem_id="qa-delete"
                    )
            with gr.Tab("Settings", id="settings"):
                mode = gr.Radio(
                    [(m.label, name) for name, m in plugins.modes().items()],
                    value=default_mode,
                    label="Answer mode",
                )
                k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages to search (k)")
                lang = gr.Radio(
                    [("Auto (the question's language)", "auto"), ("English", "en"), ("العربية", "ar")],
                    value=settings.answer_language,
                    label="Answer language",
                )
    return Page(
        turns=turns,
        chatbot=chatbot,
        question=question,
        send=send,
        examples=examples,
        clear=clear,
        export_md=export_md,
        export_js=export_js,
        sources=sources,
        shown=shown,
        translate=translate,
        translated=translated,
        docs_view=docs_view,
        overview_boxes=overview_boxes,
        overview_views=overview_views,
        summarize=summarize,
        upload=upload,
        doc_status=doc_status,
        doc_choice=doc_choice,
        remove=remove,
        mode=mode,
        k=k,
        lang=lang,
        conversation=conversation,
        saved=saved,
        saved_name=saved_name,
        rename=rename,
        delete=delete,
    )


def _wire(page: Page, handlers: Handlers) -> dict:
    """Connect the page's events to the handlers (every UI event private: not in the API); returns
    the overview refresh event (the page load runs it after listing the documents)."""
    # Every way of asking shares one pool of CONCURRENCY workers (the queue's default limit).
    ask = {
        "fn": handlers.respond,
        "inputs": [page.question, page.turns, page.mode, page.k, page.lang],
        "outputs": [page.chatbot, page.turns, page.sources, page.question, page.shown, page.translate],
        "concurrency_id": "answer",
        **PRIVATE,
    }
    overviews = {
        "fn": handlers.overviews,
        "inputs": None,
        "outputs": [*page.overview_boxes, *page.overview_views],
        "show_progress": "hidden",
        **PRIVATE,
    }
    exports = {
        "fn": handlers.exports,
        "inputs": page.turns,
        "outputs": [page.export_md, page.export_js],
        **PRIVATE,
    }
    save = {
        "fn": handlers.save_conversation,
        "inputs": [page.turns, page.conversation],
        "outputs": [page.conversation, page.saved, page.saved_name],
        "show_progress": "hidden",
        **PRIVATE,
    }
    for trigger in (page.send.click, page.question.submit):
        trigger(**ask).then(**exports).then(**save)
    asks = [*zip(page.examples, EXAMPLES), *((b, SUMMARY_QUESTION) for b in page.summarize)]
    for button, text in asks:
        fill = button.click(lambda text=text: text, None, page.question, queue=False, **PRIVATE)
        fill.then(**ask).then(**exports).then(**save)
    page.chatbot.select(
        handlers.show_sources, page.turns, [page.sources, page.shown, page.translate], **PRIVATE
    )
    page.chatbot.like(handlers.on_feedback, page.turns, None, **PRIVATE)
    cleared = [
        page.chatbot,
        page.turns,
        page.sources,
        page.shown,
        page.translate,
        page.conversation,
        page.saved,
    ]
    for trigger in (page.chatbot.clear, page.clear.click):
        trigger(handlers.clear, None, cleared, **PRIVATE).then(**exports)
    opened = [page.chatbot, page.turns, page.sources, page.shown, page.translate, page.conversation]
    page.saved.input(handlers.open_conversation, page.saved, [*opened, page.saved_name], **PRIVATE).then(
        **exports
    )
    page.rename.click(
        handlers.rename_conversation, [page.conversation, page.saved_name], page.saved, **PRIVATE
    )
    page.delete.click(
        handlers.delete_conversation, page.conversation, [*cleared, page.saved_name], **PRIVATE
    ).then(**exports)
    page.translate.click(
        handlers.translate,
        [page.turns, page.shown],
        [page.sources, page.translated, page.translate],
        concurrency_id="answer",  # the language model, shared with generative answers
        show_progress="minimal",
        **PRIVATE,
    ).then(handlers.keep_translation, [page.turns, page.translated], page.turns, queue=False, **PRIVATE).then(
        **exports
    ).then(**save)
    doc_outputs = [page.docs_view, page.doc_choice, page.doc_status]
    page.upload.upload(
        handlers.ingest_files,
        page.upload,
        [*doc_outputs, page.upload],
        concurrency_limit=1,
        concurrency_id="ingest",
        **PRIVATE,
    ).then(**overviews)
    page.remove.click(
        handlers.remove_doc, page.doc_choice, doc_outputs, concurrency_id="ingest", **PRIVATE
    ).then(**overviews)
    return overviews


def _api(handlers: Handlers, *, default_mode: str) -> None:
    """The public API: `/ask` (the JSON of `qa ask --json`) and `/documents`."""
    assistant, settings = handlers.assistant, handlers.settings

    def ask(question: str, mode: str = default_mode, k: int = settings.k, lang: str = "auto") -> dict:
        """Answer one question; the JSON of `qa ask --json` (Answer.to_dict())."""
        try:
            handlers.warmup.wait()
            return assistant.ask(question, k=int(k), mode=mode or None, answer_language=lang).to_dict()
        except QAError as exc:
            raise gr.Error(str(exc)) from None

    def documents() -> list[dict]:
        """The indexed documents: id, chunks, chars, sha256."""
        return [vars(d) for d in assistant.documents()]

    gr.api(ask, api_name="ask", concurrency_id="answer")
    gr.api(documents, api_name="documents")


def build_app(assistant: Assistant | None = None, settings: Settings | None = None) -> gr.Blocks:
    """The Gradio Blocks for one assistant: chat, sources, documents and settings; nothing is loaded yet.

    `demo.warmup` is the model warm-up that `launch()` starts (tests can wait on it).
    """
    settings = settings or (assistant.settings if assistant else get_settings())
    handlers = Handlers(assistant or Assistant(settings), settings)
    default_mode = settings.answer_mode if settings.answer_mode in plugins.modes() else "extractive"
    with gr.Blocks(title="Document Q&A", analytics_enabled=False) as demo:
        demo.warmup, demo.assistant = handlers.warmup, handlers.assistant
        page = _layout(settings, default_mode=default_mode)
        overviews = _wire(page, handlers)
        demo.load(
            handlers.on_load,
            None,
            [page.docs_view, page.doc_choice, page.doc_status],
            show_progress="hidden",
            **PRIVATE,
        ).then(**overviews)
        demo.load(handlers.saved_list, None, page.saved, show_progress="hidden", **PRIVATE)
        _api(handlers, default_mode=default_mode)
    return demo


def theme() -> gr.themes.Base:
    """A quiet blue-slate theme with system fonts."""
    return gr.themes.Soft(
        primary_hue="blue", neutral_hue="slate", font=FONTS, font_mono=["ui-monospace", "monospace"]
    )


class Served:
    """A uvicorn server running an ASGI app in a daemon thread; `close()` stops it and frees the port."""

    def __init__(self, asgi, *, host: str, port: int) -> None:
        # proxy_headers off: uvicorn would trust X-Forwarded-For from loopback; the app itself
        # trusts it only from QA_TRUSTED_PROXIES (web.api.create_server).
        config = uvicorn.Config(
            asgi, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="qa-server", daemon=True)

    def start(self) -> None:
        """Start serving; raises `QAError` when the port cannot be bound (in use, not permitted)."""
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise QAError("The server could not start: is the port already in use? Set QA_PORT.")
            time.sleep(0.01)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(assistant: Assistant | None = None, settings: Settings | None = None) -> tuple[gr.Blocks, Any, str]:
    """The whole server, not started: (page, FastAPI app with the API and the page mounted at /, host).

    Login is on with QA_AUTH (the page asks for it; the API takes QA_API_KEYS); without it the
    host is 127.0.0.1 whatever QA_HOST says.
    """
    from starlette.routing import Mount

    from web.api import Access, create_server, parse_keys, parse_proxies

    settings = settings or (assistant.settings if assistant else get_settings())
    users = parse_auth(settings.auth)
    host = settings.host if users else "127.0.0.1"
    if not users and settings.host != "127.0.0.1":
        print(f"QA_HOST={settings.host} ignored: set QA_AUTH to serve beyond this machine.", file=sys.stderr)
    demo = build_app(assistant, settings)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    page_app: dict[str, Any] = {}  # Gradio's own app once mounted: its sign-in sessions

    def session_user(request) -> str | None:
        page = page_app.get("app")
        if page is None:
            return None
        cookies = request.cookies
        token = cookies.get(f"access-token-{page.cookie_id}") or cookies.get(
            f"access-token-unsecure-{page.cookie_id}"
        )
        return page.tokens.get(token)

    access = Access(
        login=bool(users),
        keys=frozenset(parse_keys(settings.api_keys, settings.api_keys_file)),
        limit=settings.auth_failure_limit,
        session_user=session_user,
        trusted_proxies=parse_proxies(settings.trusted_proxies),
    )
    server = create_server(demo.assistant, access=access, ready=demo.warmup.wait)
    gr.mount_gradio_app(
        server,
        demo,
        path="/",
        server_name=host,
        server_port=settings.port,
        footer_links=["api"],
        auth=users,
        auth_message="Sign in to ask the documents." if users else None,
        show_error=False,
        max_file_size=f"{settings.max_file_mb:g}mb",  # refused while uploading, before it is saved
        ssr_mode=False,
        theme=theme(),
        css=render.CSS,
    )
    page_app["app"] = next(r.app for r in server.routes if isinstance(r, Mount) and r.path == "")
    return demo, server, host


def access_line(settings: Settings) -> str:
    """Who may use the page and the API, for the start-up line: login on or off, the API keyed or
    open to local clients (keys are enforced on /v1 and /api whenever set, login or not)."""
    from web.api import parse_keys

    login = "login on" if parse_auth(settings.auth) else "login off"
    if parse_keys(settings.api_keys, settings.api_keys_file):
        return f"{login}; the API needs a key"
    if parse_auth(settings.auth):
        return f"{login}; the API has no keys, so it refuses every call"
    return f"{login}; the API is open to local clients (set QA_API_KEYS to require a key)"


def launch(
    assistant: Assistant | None = None, settings: Settings | None = None, *, block: bool = True
) -> tuple[gr.Blocks, str]:
    """Start the server (the page, the OpenAI-compatible and REST API, one port): warm the model in the
    background, bind, print the URL; block unless told not to. `demo.close()` stops it."""
    settings = settings or (assistant.settings if assistant else get_settings())
    demo, server, host = serve(assistant, settings)
    demo.warmup.start()
    served = Served(server, host=host, port=settings.port)
    served.start()
    demo.server, demo.is_running = served, True  # Blocks.close() and block_thread() use these
    url = (
        f"http://127.0.0.1:{settings.port}/"
        if host in ("0.0.0.0", "127.0.0.1")
        else f"http://{host}:{settings.port}/"
    )
    print(
        f"Document Q&A running at {url} ({access_line(settings)}; API at {url}v1, docs at {url}docs)",
        flush=True,
    )
    if block:
        demo.block_thread()
    return demo, url


def main() -> None:
    """`python app.py`: log to stderr, launch and serve until stopped; a `QAError` is one line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        launch()
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
