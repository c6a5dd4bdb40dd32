"""Ingest: read documents (.txt .md .html .pdf .docx), split them into chunks, hand them to the store.

A document's text is extracted once and then never altered: chunks and their sentences are
[start, end) offsets into it, so every citation is an exact span of the source. Chunks respect
paragraphs, are sized to the embedder in tokens, overlap by whole sentences, and take their ids from
their content, so re-ingesting a file adds nothing and a changed file replaces its old chunks.
Leaves out: OCR of scanned PDFs, guessing encodings (a text that is not UTF-8 is refused with the
encoding it looks like, and `encoding=` reads it explicitly), and embedding/storage (embeddings.py,
store.py).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from qa import text as qtext
from qa.errors import InputError

SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")


@dataclass(frozen=True)
class Document:
    """A document's extracted text and identity (its file name) with a hash of that text."""

    id: str
    text: str
    sha256: str
    source: str


@dataclass(frozen=True)
class Chunk:
    """A passage of a document: its exact text, offsets, paragraph and sentence spans."""

    id: str
    doc_id: str
    index: int
    paragraph: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]  # absolute [start, end) offsets in the document


# ---------------------------------------------------------------------------------------------
# Reading files


def read_document(path: Path, *, encoding: str | None = None, max_mb: float = 50) -> Document:
    """Read one file into a `Document`; a clear `InputError` for anything that cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    if suffix not in SUPPORTED:
        raise InputError(
            f"{path.name}: unsupported file type {suffix or '(none)'}; use {', '.join(SUPPORTED)}."
        )
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name} is empty.")
    if size > max_mb * 1024 * 1024:
        raise InputError(f"{path.name} is {size / 2**20:.0f} MB, over the {max_mb:g} MB limit.")
    data = path.read_bytes()
    if suffix == ".pdf":
        text = _pdf_text(data, path.name)
    elif suffix == ".docx":
        text = _docx_text(data, path.name)
    else:
        text = decode_text(data, path.name, encoding=encoding)
        if suffix in (".html", ".htm"):
            text = html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise InputError(f"{path.name} contains no text.")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(id=path.name, text=text, sha256=digest, source=str(path))


def decode_text(data: bytes, name: str, *, encoding: str | None = None) -> str:
    """Decode UTF-8 text (BOM allowed); refuse binary data and other encodings with a hint."""
    if encoding:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise InputError(f"{name} cannot be read as {encoding}: {exc}.") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name} is UTF-16 text; convert it to UTF-8 or ingest it with --encoding utf-16.")
    if _looks_binary(data):
        raise InputError(f"{name} is a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    guess = "windows-1256" if _looks_cp1256_arabic(data) else None
    hint = f"it looks like {guess}; " if guess else ""
    flag = f"--encoding {guess}" if guess else "--encoding NAME"
    raise InputError(f"{name} is not UTF-8 text ({hint}convert it to UTF-8 or ingest it with {flag}).")


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(sample) * 0.01


def _looks_cp1256_arabic(data: bytes) -> bool:
    text = data[:8192].decode("windows-1256", errors="replace")
    arabic = len(re.findall(r"[\u0621-\u064a]", text))
    return arabic > len(text) * 0.2


def _pdf_text(data: bytes, name: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{name} is not a readable PDF ({exc}).") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise InputError(f"{name} has no extractable text (a scanned PDF needs OCR first).")
    return text


def _docx_text(data: bytes, name: str) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{name} is not a readable .docx file ({exc}).") from None
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(p.strip() for p in parts if p.strip())


class _HTMLText(HTMLParser):
    """Visible text of an HTML page; block elements become paragraph breaks."""

    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"}
    HIDDEN = {"script", "style", "noscript", "template", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document, paragraphs separated by blank lines.

    Example: html_to_text("<p>a</p><script>x</script><p>b</p>") == "a\\n\\nb"
    """
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\s*\n\s*\n\s*", "\n\n", text).strip()


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files to ingest: files as given, folders searched recursively for supported files."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED))
        else:
            out.append(path)
    return out


# ---------------------------------------------------------------------------------------------
# Chunking


def chunk_document(
    doc: Document,
    *,
    count_tokens: Callable[[str], int],
    max_tokens: int = 256,
    overlap_sentences: int = 1,
) -> list[Chunk]:
    """Split a document into sentence-aligned chunks that never cross a paragraph boundary."""
    chunks: list[Chunk] = []
    for p_index, para in enumerate(qtext.paragraphs(doc.text)):
        sents = qtext.sentences(doc.text, para)
        sizes = [count_tokens(doc.text[s.start : s.end]) for s in sents]
        first = 0
        while first < len(sents):
            last, total = first, sizes[first]
            while last + 1 < len(sents) and total + sizes[last + 1] <= max_tokens:
                last += 1
                total += sizes[last]
            chunks.append(_make_chunk(doc, len(chunks), p_index, sents[first : last + 1]))
            if last + 1 >= len(sents):
                break
            # Next window starts `overlap` sentences back, always moves forward, and must have room
            # for at least one new sentence (else the overlap alone would make a near-duplicate chunk).
            nxt = max(first + 1, last + 1 - overlap_sentences)
            if sum(sizes[nxt : last + 2]) > max_tokens:
                nxt = last + 1
            first = nxt
    return chunks


def _make_chunk(doc: Document, index: int, paragraph: int, sents: list[qtext.Span]) -> Chunk:
    start, end = sents[0].start, sents[-1].end
    body = doc.text[start:end]
    chunk_id = hashlib.sha256(f"{doc.id}\x00{start}\x00{body}".encode()).hexdigest()[:24]
    return Chunk(
        id=chunk_id,
        doc_id=doc.id,
        index=index,
        paragraph=paragraph,
        start=start,
        end=end,
        text=body,
        sentences=tuple((s.start, s.end) for s in sents),
    )


# ---------------------------------------------------------------------------------------------
# Indexing


@dataclass(frozen=True)
class IngestReport:
    """What one ingest call did, per document id."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    chunks: int


def index_documents(
    docs: list[Document], *, store, embedder, settings, progress: bool = True
) -> IngestReport:
    """Chunk, embed and store documents; unchanged ones are skipped, changed ones replaced.

    All vectors of a document are computed before the store is touched, so a failure (a model
    error, an interrupt) leaves the index as it was.
    """
    from tqdm import tqdm

    added, replaced, unchanged, total = [], [], [], 0
    for doc in tqdm(docs, desc="ingest", unit="doc", disable=not progress or len(docs) < 2):
        old_sha = store.document_sha(doc.id)
        if old_sha == doc.sha256:
            unchanged.append(doc.id)
            continue
        chunks = chunk_document(
            doc,
            count_tokens=embedder.count_tokens,
            max_tokens=min(settings.chunk_tokens, embedder.max_tokens),
            overlap_sentences=settings.chunk_overlap_sentences,
        )
        spans = sorted({s for c in chunks for s in c.sentences})
        # One encode call for chunks and sentences: batching keeps the model busy.
        texts = [c.text for c in chunks] + [doc.text[s:e] for s, e in spans]
        vectors = embedder.encode_documents(texts, progress=progress)
        store.replace_document(
            doc,
            chunks,
            vectors[: len(chunks)],
            dict(zip(spans, vectors[len(chunks) :], strict=True)),
        )
        (replaced if old_sha else added).append(doc.id)
        total += len(chunks)
    return IngestReport(tuple(added), tuple(replaced), tuple(unchanged), total)
