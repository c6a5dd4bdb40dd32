"""The command line: `python -m qa ingest | ask | docs | remove | reset | models`.

An edge of the system: it turns `QAError`s into one sentence on stderr and a non-zero exit code,
never a traceback. Leaves out: the pipeline itself (qa.assistant) and the evaluation runner (eval/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qa.errors import QAError


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), argv)


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, run `args.func`, and turn a `QAError` into one line on stderr and exit code 2."""
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Cited answers over your documents.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser(
        "ingest", help="index files or folders (.txt .md .html .pdf .docx; scans and photos by OCR)"
    )
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--encoding", help="read text files in this encoding (e.g. windows-1256, utf-16)")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("ask", help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--k", type=_positive, help="passages to retrieve (1-50)")
    p.add_argument("--mode", help="answer mode: extractive, generative, … (default: QA_ANSWER_MODE)")
    p.add_argument("--lang", choices=["auto", "ar", "en"], help="answer language (auto: the question's)")
    p.add_argument(
        "--translate", action="store_true", help="translate each cited sentence into the answer language"
    )
    p.set_defaults(func=_ask)

    p = sub.add_parser("docs", help="list indexed documents")
    p.set_defaults(func=_docs)

    p = sub.add_parser("remove", help="remove a document from the index")
    p.add_argument("doc", help="a document id (as `qa docs` lists it) or the path of an indexed file")
    p.set_defaults(func=_remove)

    p = sub.add_parser("reset", help="empty the index")
    p.set_defaults(func=_reset)

    p = sub.add_parser("models", help="fetch, verify or list the offline models")
    p.add_argument("action", choices=["fetch", "verify", "list"])
    p.add_argument("names", nargs="*", help="models (default: all)")
    p.set_defaults(func=_models)
    return parser


def _positive(value: str) -> int:
    """An argparse type: an integer from 1 to 50 (`Settings.k`'s range)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= n <= 50:
        raise argparse.ArgumentTypeError(f"{n} is out of range; use 1 to 50")
    return n


def _assistant():
    # deferred: the assistant loads LangChain and every stage; `qa --help` and `qa models` need neither
    from qa.assistant import Assistant

    return Assistant()


def _ingest(args) -> int:
    report = _assistant().ingest(args.paths, encoding=args.encoding)
    for label, ids in (
        ("added", report.added),
        ("replaced", report.replaced),
        ("unchanged", report.unchanged),
    ):
        for doc_id in ids:
            print(f"{label:9} {doc_id}")
    for source, same in report.duplicates:
        print(f"duplicate {source} (same text as {same}; not indexed again)")
    print(f"{report.chunks} chunks written")
    return 0


def _ask(args) -> int:
    assistant = _assistant()
    result = assistant.ask(args.question, k=args.k, mode=args.mode, answer_language=args.lang)
    if args.translate:
        result = assistant.translate(result)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    if result.short_answer:
        short = result.short_answer
        print(f"{short.text} [{short.n}]  ({short.status()})\n")
    print(result.answer)
    if result.note:
        print(f"\n({result.note})")
    shown = result.citations or result.closest
    if shown:
        print("\nSources:" if result.citations else "\nClosest passages (not an answer):")
    for c in shown:
        tag = f"[{c.n}]" if result.citations else " -"
        page = f" p. {c.page}" if c.page else ""
        scan = f" OCR {c.recognition.confidence:.0%}" if c.recognition else ""
        print(f"{tag} {c.doc}{page} ¶{c.paragraph + 1} [{c.start}:{c.end}] score {c.score:.2f}{scan}")
        print(f"    {c.quote}")
        if c.translation and c.translation.text:
            record = f"; {c.translation.note}" if c.translation.note else ""  # the check's record
            print(f"    = {c.translation.text}  (machine translation, checked word by word{record})")
        elif c.translation and c.translation.rough and c.translation.check:
            print(f"    ~ {_marked(c.translation.rough, c.translation.check)}")
            print(
                f"      (rough machine translation, not checked: {c.translation.note}; [?word]: no word of the source says it)"
            )
        elif c.translation:
            print(f"    (no translation shown: {c.translation.note})")
        if c.gloss:
            words = (
                f"{g.word}={g.latin or '/'.join(g.glosses[:2]) or '?'}"
                for g in c.gloss
                if g.kind != "function"
            )
            print(f"    word by word: {' · '.join(words)}")
    return 0


def _marked(text: str, check) -> str:
    """A rough rendering with each unsupported content word written [?word]."""
    out, at = [], 0
    for w in check.words:
        if w.kind in ("content", "name", "number") and not w.supported:
            out += [text[at : w.start], f"[?{text[w.start : w.end]}]"]
            at = w.end
    return "".join([*out, text[at:]])


def _docs(args) -> int:
    assistant = _assistant()
    docs = assistant.documents()
    if not docs:
        print("Nothing is indexed. Add documents with `python -m qa ingest PATH`.")
    for d in docs:
        pages = f"\t{d.pages} pages" if d.pages else ""
        print(
            f"{d.id}\t{d.chunks} chunks\t{d.chars} chars{pages}\tsha256 {d.sha256[:12]}\t{assistant.source_label(d)}"
        )
    return 0


def _remove(args) -> int:
    if not _assistant().remove(args.doc):
        print(f"error: {args.doc} is not indexed (see `python -m qa docs`).", file=sys.stderr)
        return 2
    print(f"removed {args.doc}")
    return 0


def _reset(args) -> int:
    aside = _assistant().reset()
    if aside:
        print(f"The damaged index was moved to {aside}.")
    print("The index is empty.")
    return 0


def _models(args) -> int:
    # deferred: qa.models loads the embedder's runtime types (LangChain, ~0.5 s) and the settings
    # pydantic (~0.2 s); `qa --help` needs neither
    from qa import models
    from qa.config import get_settings

    models_dir = get_settings().models_dir
    specs = [models.get_spec(n) for n in args.names] or list(models.REGISTRY.values())
    for spec in specs:
        if args.action == "list":
            state = "fetched" if models.is_fetched(spec, models_dir) else "not fetched"
            print(f"{spec.name:20} {spec.kind:9} {spec.size_mb:5} MB  {state:11}  {spec.description}")
        elif args.action == "fetch":
            path = models.fetch(spec, models_dir)
            print(f"{spec.name}: verified at {path}")
        else:
            path = models.verify(spec, models_dir, full=True)
            print(f"{spec.name}: sha256 OK ({path})")
    return 0
