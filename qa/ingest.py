"""Ingest: read documents (.txt .md .html .pdf .docx, scans and photos), split them into chunks, hand them to the store.

A document's text is extracted once and then never altered: chunks and their sentences are
[start, end) offsets into it, so every citation is an exact span of the source. Chunks respect
paragraphs, are sized to the embedder in tokens, overlap by whole sentences, and take their ids from
their content, so re-ingesting a file adds nothing and a changed file replaces its old chunks.

Formats, each through a well-kept library: HTML through trafilatura (the article's main text:
navigation, footers, scripts, styles and comments dropped), rendered by inscriptis (table cells
apart, `<br>` a line break, blocks paragraphs): measured on a page with a nav bar, a table and a
footer, trafilatura alone keeps the cells apart but renders tables as Markdown with `|---|` rows and
`<br>` as a paragraph break, and inscriptis alone keeps the nav and the footer. Tables (HTML and
DOCX) are read a row a line, each cell after its column's heading (`table_rows`), and list items and
table rows are kept as units (`Document.units`): each one sentence, which a sentence announcing an
enumeration is cited with (qa/retrieve.py). DOCX in document
order through python-docx's `iter_inner_content` (tables in place, nested tables included); the
text of a paragraph is read from its XML here because python-docx drops tracked insertions
(`w:ins`): text reads as Word displays it, insertions in and deletions out. A .docx is a zip: its
declared sizes are checked before anything is unpacked. PDF through pypdf, page by page (a chunk
knows its page); Arabic presentation forms are folded into ordinary letters and text written in
visual order (reversed words) is put back in reading order. A PDF page without text, or whose text
layer is glyph codes without their letters, is read by OCR (qa/ocr.py), as are images (.png .jpg
.tif …): a mixed PDF keeps its text layer where it has one. Leaves out: guessing encodings (a text that is not UTF-8 is refused with the
encoding it looks like, and `encoding=` reads it explicitly, unless that reading is mojibake by
charset-normalizer's mess ratio and another encoding fits: then that one is named), and
embedding/storage (embeddings.py, store.py).
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from qa import text as qtext
from qa.errors import InputError
from qa.ocr import IMAGE_SUFFIXES, Recogniser, join_pages
from qa.records import DocVectors
from qa.types import Chunk as Chunk  # re-exported: the stages name them as qa.ingest's
from qa.types import Document as Document

SUPPORTED = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", *IMAGE_SUFFIXES)
# A sentence (so a citation) is at most this many characters: longer runs are split (qtext.split_long).
MAX_SENTENCE_CHARS = 600


# ---------------------------------------------------------------------------------------------
# Reading files


def read_document(
    path: Path, *, encoding: str | None = None, max_mb: float = 50, ocr: Recogniser | None = None
) -> Document:
    """Read one file into a `Document` (id: the file name); an `InputError` for anything unusable.

    `ocr` reads images and PDF pages without a usable text layer (None: they are refused).
    Raises `InputError` (one sentence) for a missing, empty, oversized, unsupported, undecodable or
    unparseable file, a hostile zip (declared sizes too large) or image (too many pixels or pages),
    or one without text.
    """
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
    page_starts: tuple[int, ...] = ()
    pages: tuple = ()
    if suffix in IMAGE_SUFFIXES:
        if ocr is None:
            raise InputError(
                f"{path.name} is an image, and reading it needs OCR, which is off (QA_OCR=false)."
            )
        text, page_starts, pages = ocr.read_image(data, path.name)
    elif suffix == ".pdf":
        text, page_starts, pages = _pdf_text(data, path.name, ocr=ocr)
    elif suffix == ".docx":
        text = _docx_text(data, path.name, max_mb=max_mb, marked=True)
    else:
        text = decode_text(data, path.name, encoding=encoding)
        if suffix in (".html", ".htm"):
            text = _html_marked(text)
    units: tuple[tuple[int, int], ...] = ()
    if not page_starts:
        text, units = take_units(_clean_newlines(text))
    if not text:
        raise InputError(f"{path.name} contains no text.")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Document(
        id=path.name,
        text=text,
        sha256=digest,
        source=str(path.resolve()),
        page_starts=page_starts,
        ocr=pages,
        units=units,
    )


# A list item or table row starts with this mark while a format's reader lays its text out; the mark
# is taken out (`take_units`) before the text is stored, leaving the unit's span. A Unicode
# noncharacter: never part of interchanged text, and dropped from the source before marking.
UNIT_MARK = "\ufdd0"


def take_units(text: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """`text` without its `UNIT_MARK`s, and the span of each marked unit in the result.

    A unit runs from the start of the line its mark is on (a list's bullet or number included) to the
    end of that line, trimmed of whitespace.

    Example: take_units("a:\\n* \\ufdd0b\\n\\ufdd0c d") == ("a:\\n* b\\nc d", ((3, 6), (7, 10)))
    """
    if UNIT_MARK not in text:
        return text, ()
    pieces = text.split(UNIT_MARK)
    clean = "".join(pieces)
    units, at = [], 0
    for piece in pieces[:-1]:
        at += len(piece)  # the mark's position in the clean text
        start = clean.rfind("\n", 0, at) + 1
        end = clean.find("\n", at)
        span = qtext._strip(clean, qtext.Span(start, len(clean) if end < 0 else end))
        if span.end > span.start and (not units or units[-1] != (span.start, span.end)):
            units.append((span.start, span.end))
    return clean, tuple(units)


def _clean_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


# charset-normalizer's mess ratio (its weighted share of implausible characters, 0 for clean text)
# from which a text read in an explicit encoding is taken for mojibake; charset-normalizer's own default
# cut-off. Measured: correct readings 0–0.10 (the seeds/ article as UTF-8, windows-1256 and UTF-16 all
# 0; English, French, markdown, HTML, code, Arabic with tashkeel 0–0.023; Persian 0.098); wrong ones
# 0.58–3.5 (the article in windows-1256 read as latin-1 2.74, as cp1252 2.68; in UTF-8 read as latin-1
# 3.49, as windows-1256 1.66; a 5-word Arabic line in windows-1256 read as latin-1 1.79; French in
# UTF-8 read as latin-1 0.58).
MAX_MESS = 0.2


def decode_text(data: bytes, name: str, *, encoding: str | None = None) -> str:
    """Decode UTF-8 text (BOM allowed), or `encoding` when given; refuse binary data and other encodings.

    An explicit `encoding` that yields mojibake (charset-normalizer's mess ratio at least `MAX_MESS`)
    while another encoding reads the bytes plausibly is refused, naming that one. Raises `InputError`
    (one sentence) for an unknown or failing encoding, mojibake, UTF-16 or another encoding without
    `encoding`, or binary data.
    """
    if encoding:
        try:
            text = data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise InputError(f"{name} cannot be read as {encoding}: {exc}.") from None
        _refuse_mojibake(data, text, name, encoding=encoding)
        return text
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            f"{name} is UTF-16 text; convert it to UTF-8, or give its encoding: --encoding utf-16 in the "
            "CLI, encoding=utf-16 in the API."
        )
    if _looks_binary(data):
        raise InputError(f"{name} is a binary file, not text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    guess = "windows-1256" if _looks_cp1256_arabic(data) else None
    hint = f"it looks like {guess}; " if guess else ""
    name_it = guess or "NAME"
    raise InputError(
        f"{name} is not UTF-8 text ({hint}convert it to UTF-8, or give its encoding: --encoding {name_it} "
        f"in the CLI, encoding={name_it} in the API)."
    )


def _refuse_mojibake(data: bytes, text: str, name: str, *, encoding: str) -> None:
    """Refuse `text` (`data` read as `encoding`) if it is mojibake and another encoding fits the bytes.

    Mojibake with no plausible alternative is kept (the reader asked for this encoding), with a logged
    warning. Raises `InputError` naming the encoding that fits.
    """
    # deferred: charset-normalizer loads only when a file comes with an explicit encoding
    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    if mess_ratio(text, maximum_threshold=MAX_MESS) < MAX_MESS:
        return
    best = from_bytes(data).best()
    if best is None or best.chaos >= MAX_MESS or _codec(best.encoding) == _codec(encoding):
        logging.getLogger(__name__).warning(
            "%s read as %s looks like mojibake, and no other encoding reads it better.", name, encoding
        )
        return
    fits = _codec(best.encoding)
    raise InputError(
        f"{name} read as {encoding} looks like mojibake; it looks like {fits}: --encoding {fits} in the "
        f"CLI, encoding={fits} in the API."
    )


def _codec(encoding: str) -> str:
    """The usual name of a Python codec (cp1256 → windows-1256, utf_8 → utf-8)."""
    name = codecs.lookup(encoding).name
    return re.sub(r"^cp(125\d)$", r"windows-\1", name)


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


# -- PDF ----------------------------------------------------------------------------------------


def _pdf_text(data: bytes, name: str, *, ocr: Recogniser | None = None) -> tuple[str, tuple[int, ...], tuple]:
    """The text of a PDF, pages joined by blank lines (two scanned pages that hold one paragraph by a
    space: `qa.ocr.join_pages`), the offset where each page starts, and the pages read by OCR (those
    without text, or whose text layer is glyph codes, when `ocr` is given)."""
    # deferred: each format's parser loads with the first file of its format
    from pypdf import PdfReader

    # pypdf logs what it repairs ("invalid pdf header", "EOF marker not found"); a file it cannot
    # read still gets our one sentence, so its own lines would only be noise on stderr.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on broken files: all one sentence here
        raise InputError(f"{name} is not a readable PDF ({type(exc).__name__}: {exc}).") from None
    unusable = [i + 1 for i, page in enumerate(pages) if _needs_ocr(page)]
    if ocr is None:
        if _unreadable_glyphs("".join(pages)):
            raise InputError(
                f"{name} has a text layer of glyph codes without their letters; it needs OCR (QA_OCR=true), "
                "or export it again with embedded Unicode text."
            )
        recognised = {}
    else:
        recognised = ocr.read_pdf_pages(data, unusable, name)
    read = []  # (number, text, OCR page or None)
    for number, page in enumerate(pages, start=1):
        if number in recognised:
            read.append((number, *recognised[number]))
            continue
        page = _clean_newlines(page)
        if looks_visual_order(page):
            page = "\n".join(_visual_to_logical(line) for line in page.split("\n"))
        read.append((number, qtext.fold_text(page).strip(), None))  # readable letters, not glyphs
    # pages joined by blank lines (a paragraph run on over two scanned pages by a space: the "pages"
    # repair); an empty page starts where the next one does, so page numbers stay right
    text, starts, scans = join_pages(read, ocr.repairs if ocr else ())
    if not text:
        hint = "no text was recognised in it" if ocr else "a scanned PDF needs OCR (QA_OCR=true)"
        raise InputError(f"{name} has no extractable text ({hint}).")
    return text, starts, scans


# A page with fewer visible characters than this has no text layer worth keeping: a scan carrying
# only its page number or a stamp. OCR reads such a page again (a short title page reads the same).
MIN_PAGE_CHARS = 16


def _needs_ocr(page: str) -> bool:
    """True for a PDF page's text that is missing, next to nothing, or glyph codes (`_unreadable_glyphs`)."""
    return len(re.sub(r"\s", "", page)) < MIN_PAGE_CHARS or _unreadable_glyphs(page)


def _unreadable_glyphs(text: str) -> bool:
    """True when most of a PDF's text is replacement characters, private-use glyphs or (cid:N) codes."""
    visible = re.sub(r"\s", "", text)
    if not visible:
        return False
    bad = len(re.findall(r"[\ufffd\ue000-\uf8ff]", visible)) + 6 * len(re.findall(r"\(cid:\d+\)", text))
    return bad > 0.3 * len(visible)


_REVERSED_STOPWORDS = frozenset(w[::-1] for w in qtext.STOPWORDS if qtext.detect_language(w) == "ar")


def looks_visual_order(text: str) -> bool:
    """True when Arabic words read backwards: reversed common words ("يف", "نم") outnumber real ones.

    Example: looks_visual_order("يف ةنيدملا نم ىلع") is True; looks_visual_order("في المدينة") is False
    """
    words = re.findall(r"[\u0621-\u064a]+", qtext.fold_text(text))
    forward = sum(w in qtext.STOPWORDS for w in words)
    backward = sum(w in _REVERSED_STOPWORDS and w not in qtext.STOPWORDS for w in words)
    return backward >= 2 and backward > 2 * forward


def _visual_to_logical(line: str) -> str:
    """Reverse a visual-order line, keeping runs of Latin letters and digits in their own order."""
    reversed_line = line[::-1]
    return re.sub(
        r"[A-Za-z0-9][A-Za-z0-9.,:/%-]*[A-Za-z0-9]|[A-Za-z0-9]", lambda m: m.group()[::-1], reversed_line
    )


# -- DOCX ---------------------------------------------------------------------------------------

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
# Word shows these subtrees' text as deleted (or not at all): never read.
_SKIPPED = {f"{_W}del", f"{_W}moveFrom", f"{_MC}Fallback", f"{_W}instrText", f"{_W}delInstrText"}


def check_zip(data: bytes, name: str, *, max_mb: float) -> None:
    """Refuse a zip-based file whose declared unpacked sizes are hostile, before anything is unpacked.

    Limits: the XML parts together at most `max_mb` MB, all parts together at most 4 × `max_mb` MB.
    The parser reads the copy `_bounded_zip` makes, which holds no member past its declared size, so
    the declared sizes bound the memory a parser can be made to use. Raises `InputError`.
    """
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InputError(f"{name} is not a readable .docx file ({exc}).") from None
    limit = max_mb * 2**20
    xml = sum(m.file_size for m in members if m.filename.endswith((".xml", ".rels")))
    total = sum(m.file_size for m in members)
    if xml > limit or total > 4 * limit:
        raise InputError(
            f"{name} unpacks to {max(xml, total) / 2**20:.0f} MB, over the limit for a "
            f"{max_mb:g} MB document; it is refused as possibly hostile."
        )


# A zip member is read this many bytes at a time, so one read inflates at most this much. Measured on a
# .docx whose document.xml declares 1.6 KB and deflates 300 MB: refused at a 91 MB CLI peak (703 MB
# while python-docx inflated it whole; /usr/bin/time -v on `python -m qa ingest`, hash embedder).
ZIP_READ_BYTES = 1 << 20


def _bounded_zip(data: bytes, name: str) -> bytes:
    """A copy of the zip (members stored) read no further than each member's declared size.

    Python's zipfile reads a whole member (`ZipFile.read`, which python-docx uses) by inflating its
    entire deflated stream in one call and only then cutting it to the declared size, so a member that
    declares 4 KB can make it inflate 300 MB. Here each member is read `ZIP_READ_BYTES` at a time up to
    one byte past its declared size, and the parser is given the copy, so nothing it reads can inflate
    further. The copy is at most the sum of the declared sizes (bytes), which `check_zip` limits.
    Raises `InputError` for a member holding more than it declares or failing its CRC-32, one compressed
    other than stored or deflated (bzip2 and LZMA inflate without a bound), or an unreadable zip.
    """
    out = io.BytesIO()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as rebuilt:
            # the last entry of a name is the one a reader gets, as in ZipFile.getinfo
            for info in {m.filename: m for m in source.infolist()}.values():
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise InputError(
                        f"{name}: its part {info.filename} uses zip compression method "
                        f"{info.compress_type}, which .docx files do not use; it is refused."
                    )
                _copy_member(source, info, rebuilt, name)
    except InputError:
        raise
    except Exception as exc:  # zip, inflate (zlib) and encryption errors alike: one sentence
        raise InputError(f"{name} is not a readable .docx file ({type(exc).__name__}: {exc}).") from None
    return out.getvalue()


def _copy_member(source: zipfile.ZipFile, info: zipfile.ZipInfo, rebuilt: zipfile.ZipFile, name: str) -> None:
    """Copy one member, read at most one byte past its declared size; `InputError` if it does not match."""
    declared = info.file_size
    info.file_size = declared + 1  # (our own ZipFile's entry) a byte past shows a member that holds more
    read = 0
    with (
        source.open(info) as member,
        rebuilt.open(zipfile.ZipInfo(info.filename, info.date_time), "w") as target,
    ):
        try:
            while chunk := member.read(ZIP_READ_BYTES):
                read += len(chunk)
                if read > declared:
                    break
                target.write(chunk)
        except zipfile.BadZipFile:  # the CRC-32 of what was read
            read = -1
    if read != declared:
        raise InputError(
            f"{name}: its part {info.filename} does not hold the {declared} bytes and CRC-32 the "
            "zip declares for it; it is refused as damaged or possibly hostile."
        )


def _docx_text(data: bytes, name: str, *, max_mb: float = 50, marked: bool = False) -> str:
    """Body text of a .docx in document order: paragraphs, and tables (nested ones too) in place.

    List paragraphs (numbered or bulleted) and table rows start with `UNIT_MARK` when `marked`.

    Raises `InputError` for hostile declared sizes (`check_zip`), a part that does not hold what the
    zip declares (`_bounded_zip`), or anything python-docx cannot read.
    """
    # deferred: each format's parser loads with the first file of its format
    import docx

    check_zip(data, name, max_mb=max_mb)
    bounded = _bounded_zip(data, name)
    try:
        document = docx.Document(io.BytesIO(bounded))
        parts = list(_docx_blocks(document))
    except Exception as exc:  # zip, XML (lxml) and package errors alike: one sentence
        raise InputError(f"{name} is not a readable .docx file ({type(exc).__name__}: {exc}).") from None
    mark = UNIT_MARK if marked else ""
    return "\n\n".join(mark * unit + text for text, unit in parts)


def _docx_blocks(container):
    """(text, is a unit) for the paragraphs and table rows of a document body or a table cell, in
    document order; list paragraphs and table rows are units. Empty blocks are left out."""
    # deferred: python-docx loads with the first .docx
    from docx.table import Table

    for block in container.iter_inner_content():
        if isinstance(block, Table):
            yield from _docx_table(block)
        elif text := _paragraph_text(block._p).replace(UNIT_MARK, "").strip():
            yield text, _is_list_item(block)


def _is_list_item(paragraph) -> bool:
    """True for a numbered or bulleted paragraph: numbering of its own, or from its style (Word's
    "List Bullet", "List Number" and their kin)."""
    if paragraph._p.find(f"{_W}pPr/{_W}numPr") is not None:
        return True
    style = paragraph.style
    while style is not None:
        if style.element.find(f"{_W}pPr/{_W}numPr") is not None or style.name.startswith("List"):
            return True
        style = style.base_style
    return False


def _docx_table(table):
    """(row text, True) for each row, read with its header row: "heading: cell | heading: cell"
    (`row_text`); merged cells once; a nested table follows its row."""
    # deferred: python-docx loads with the first .docx
    from docx.table import Table

    rows, nested = [], []
    for row in table.rows:
        cells, inner, seen = [], [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            texts = []
            for block in cell.iter_inner_content():
                if isinstance(block, Table):
                    inner.extend(_docx_table(block))
                else:
                    texts.append(_paragraph_text(block._p))
            cells.append(" ".join(" ".join(t.replace(UNIT_MARK, "").split()) for t in texts if t.strip()))
        marked = row._tr.find(f"{_W}trPr/{_W}tblHeader") is not None
        rows.append((cells, marked))
        nested.append(inner)
    for text, inner in zip(table_rows([c for c, _ in rows], [m for _, m in rows]), nested, strict=True):
        if text:
            yield text, True
        yield from inner


def table_rows(rows: list[list[str]], marked: list[bool] | None = None) -> list[str]:
    """Each row of a table as one line read with its header row: "heading: cell | heading: cell".

    The header is the rows marked as headers (`<th>` cells, `<thead>`, Word's "repeat as header
    row"), else the first row when it looks like one (`looks_like_header`). Its own line is left out
    when other rows carry it (returned as ""); a cell under an empty heading is itself alone, an empty
    cell is left out. A table without a header is its cells joined by " | ", as before; a row
    without text is "".

    Example: table_rows([["المحافظة", "أيام المياه"], ["عمّان", "3"]]) == ["", "المحافظة: عمّان | أيام المياه: 3"]
    """
    marked = marked or [False] * len(rows)
    heads = [i for i, m in enumerate(marked) if m]
    if not heads and looks_like_header(rows):
        heads = [0]
    header = rows[heads[-1]] if heads else []
    out = []
    for i, cells in enumerate(rows):
        if i in heads and len(rows) > len(heads):
            out.append("")
            continue
        if not heads or i in heads:
            out.append(" | ".join(cells) if any(cells) else "")
            continue
        pieces = []
        for j, cell in enumerate(cells):
            if not cell:
                continue
            head = header[j] if j < len(header) and i not in heads else ""
            pieces.append(f"{head}: {cell}" if head and head != cell else cell)
        out.append(" | ".join(pieces))
    return out


# A first row is taken for a table's header when no row is marked as one and it reads like headings:
# at least two rows and two columns, every cell filled, no digits, each at most this many characters.
MAX_HEADING_CHARS = 60


def looks_like_header(rows: list[list[str]]) -> bool:
    """True when a table's first row reads like column headings (see `MAX_HEADING_CHARS`).

    Example: looks_like_header([["المحافظة", "الأيام"], ["عمّان", "3"]]) is True
    """
    if len(rows) < 2 or len(rows[0]) < 2:
        return False
    first = rows[0]
    return all(c and len(c) <= MAX_HEADING_CHARS and not any(ch.isdigit() for ch in c) for c in first)


def _paragraph_text(p) -> str:
    """A paragraph's text as Word displays it: runs, tracked insertions in, deletions out."""
    out: list[str] = []

    def walk(element) -> None:
        for child in element:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SKIPPED:
                continue
            if tag == f"{_W}t":
                out.append(child.text or "")
            elif tag == f"{_W}tab":
                out.append("\t")
            elif tag in (f"{_W}br", f"{_W}cr"):
                out.append("\n")
            elif tag == f"{_W}p":  # a text box's paragraph inside this one
                out.append(" ")
                walk(child)
            else:
                walk(child)

    walk(p)
    return "".join(out)


# -- HTML ---------------------------------------------------------------------------------------


def html_to_text(html: str) -> str:
    """The main text of an HTML page: trafilatura finds it, inscriptis lays it out.

    Navigation, headers, footers, scripts, styles and comments are dropped; a table row is a line,
    read with its header row ("heading: cell | heading: cell", `table_rows`), a list item a line
    after its bullet or number, `<br>` a line break and blocks are paragraphs (blank lines). A page
    where trafilatura finds no main text is rendered whole by inscriptis (scripts and styles still out).

    Example: html_to_text("<table><tr><td>الحديقة</td><td>شركة الواحة</td></tr></table>") == "الحديقة | شركة الواحة"
    """
    return take_units(_html_marked(html))[0]


def _html_marked(html: str) -> str:
    """`html_to_text` with each list item and table row starting with `UNIT_MARK`."""
    # deferred: each format's parser loads with the first file of its format
    import trafilatura
    from inscriptis import get_text
    from inscriptis.model.config import ParserConfig

    html = html.replace(UNIT_MARK, "")
    main = None
    if html.strip():
        try:
            main = trafilatura.extract(
                html, output_format="html", include_tables=True, include_comments=False, favor_recall=True
            )
        except Exception:  # trafilatura gives up on odd markup: render the page whole instead
            main = None
    config = ParserConfig(table_cell_separator=" | ", display_links=False, display_images=False)
    try:
        text = get_text(_mark_units(main or html), config)
    except Exception as exc:
        raise InputError(f"This HTML cannot be parsed ({type(exc).__name__}).") from None
    lines = [re.sub(r"[ \t\u00a0]{2,}", " ", line).strip() for line in text.split("\n")]
    lines = [re.sub(r"(?:\s*\|\s*)+$", "", re.sub(r"^(?:\s*\|\s*)+", "", line)) for line in lines]
    lines = [line for line in lines if line.strip(UNIT_MARK + " *") or UNIT_MARK not in line]
    lines = [re.sub(r"^\* (?=" + UNIT_MARK + ")", "• ", line) for line in lines]  # inscriptis's bullet
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _mark_units(html: str) -> str:
    """The HTML with `UNIT_MARK` at the start of each list item, and each table replaced by its rows
    read with the header row (`table_rows`), one marked line (a `<div>`) a row.

    Markup lxml cannot parse is returned as it is (inscriptis lays it out unmarked).
    """
    # deferred: lxml (trafilatura's and inscriptis's parser) loads with the first HTML file
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return html
    for item in root.iter("li"):
        item.text = UNIT_MARK + (item.text or "")
    for table in reversed(list(root.iter("table"))):  # inner tables first: an outer cell reads them as text
        rows, marked = [], []
        for tr in table.iter("tr"):
            cells = [c for c in tr if c.tag in ("td", "th")]
            rows.append([" ".join(c.text_content().replace(UNIT_MARK, "").split()) for c in cells])
            in_head = tr.getparent() is not None and tr.getparent().tag == "thead"
            marked.append(bool(cells) and (in_head or all(c.tag == "th" for c in cells)))
        block = lxml.html.Element("div")
        for text in table_rows(rows, marked):
            if text:
                line = lxml.html.Element("div")
                line.text = UNIT_MARK + text
                block.append(line)
        block.tail = table.tail
        table.getparent().replace(table, block)
    return lxml.html.tostring(root, encoding="unicode")


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
    max_sentence_chars: int = MAX_SENTENCE_CHARS,
) -> list[Chunk]:
    """Split a document into sentence-aligned chunks that never cross a paragraph boundary.

    Paragraphs and sentences are found on the text with its presentation forms folded
    (`qtext.fold`) and mapped back, so every span is exact in `doc.text`. A sentence longer than
    `max_sentence_chars` characters or `max_tokens` tokens (as `count_tokens` counts them, on the
    folded text the embedder sees) is split at clause marks, then at word boundaries: every chunk
    fits the embedder and every citation is a readable length.
    """
    folded = qtext.fold(doc.text)
    base = folded.text
    units = [_folded_span(folded, a, b) for a, b in doc.units]
    unit_spans: set[tuple[int, int]] = set()
    chunks: list[Chunk] = []
    for p_index, para in enumerate(qtext.paragraphs(base)):
        sents, sizes = [], []
        for sentence, is_unit in _with_units(qtext.sentences(base, para), units, para):
            for piece in _fit(base, sentence, count_tokens, max_tokens, max_sentence_chars):
                sents.append(folded.span(piece.start, piece.end))
                sizes.append(count_tokens(base[piece.start : piece.end]))
                if is_unit:
                    unit_spans.add((sents[-1].start, sents[-1].end))
        first = 0
        while first < len(sents):
            last, total = first, sizes[first]
            while last + 1 < len(sents) and total + sizes[last + 1] <= max_tokens:
                last += 1
                total += sizes[last]
            chunks.append(_make_chunk(doc, len(chunks), p_index, sents[first : last + 1], unit_spans))
            if last + 1 >= len(sents):
                break
            # Next window starts `overlap` sentences back, always moves forward, and must have room
            # for at least one new sentence (else the overlap alone would make a near-duplicate chunk).
            nxt = max(first + 1, last + 1 - overlap_sentences)
            if sum(sizes[nxt : last + 2]) > max_tokens:
                nxt = last + 1
            first = nxt
    return chunks


def _fit(
    text: str, span: qtext.Span, count_tokens: Callable[[str], int], max_tokens: int, max_chars: int
) -> list[qtext.Span]:
    """`span` split (qtext.split_long) until every piece has at most `max_chars` chars and `max_tokens` tokens."""
    out = []
    for piece in qtext.split_long(text, span, max_chars):
        length = piece.end - piece.start
        if length > 1 and count_tokens(text[piece.start : piece.end]) > max_tokens:
            out.extend(_fit(text, piece, count_tokens, max_tokens, max(1, length // 2)))
        else:
            out.append(piece)
    return out


def _folded_span(folded: qtext.Folded, start: int, end: int) -> qtext.Span:
    """The folded text's span of the original `[start, end)` (the inverse of `Folded.span`)."""
    return qtext.Span(bisect.bisect_left(folded.origin, start), bisect.bisect_left(folded.origin, end))


def _with_units(
    sentences: list[qtext.Span], units: list[qtext.Span], para: qtext.Span
) -> list[tuple[qtext.Span, bool]]:
    """The paragraph's sentences with each unit (a list item or table row) whole: the sentences a
    unit overlaps become the unit itself, marked True."""
    inside = [
        qtext.Span(max(u.start, para.start), min(u.end, para.end))
        for u in units
        if u.start < para.end and u.end > para.start
    ]
    if not inside:
        return [(s, False) for s in sentences]
    out = [(u, True) for u in inside]
    out += [(s, False) for s in sentences if not any(s.start < u.end and s.end > u.start for u in inside)]
    return sorted(out, key=lambda pair: pair[0].start)


def _make_chunk(
    doc: Document,
    index: int,
    paragraph: int,
    sents: list[qtext.Span],
    units: set[tuple[int, int]] = frozenset(),
) -> Chunk:
    start, end = sents[0].start, sents[-1].end
    body = doc.text[start:end]
    # The version is part of the id: a new version's records never overwrite the old one's.
    chunk_id = hashlib.sha256(f"{doc.id}\x00{doc.sha256}\x00{start}\x00{body}".encode()).hexdigest()[:24]
    return Chunk(
        id=chunk_id,
        doc_id=doc.id,
        index=index,
        paragraph=paragraph,
        start=start,
        end=end,
        text=body,
        sentences=tuple((s.start, s.end) for s in sents),
        page=doc.page_at(start),
        doc_sha=doc.sha256,
        units=tuple((s.start, s.end) for s in sents if (s.start, s.end) in units),
    )


# ---------------------------------------------------------------------------------------------
# Indexing


@dataclass(frozen=True)
class IngestReport:
    """What one ingest call did, per document id; `duplicates` pairs a skipped file's path with the
    id of the indexed document that has the same text."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    chunks: int
    duplicates: tuple[tuple[str, str], ...] = ()


def chunk_for_index(doc: Document, *, embedder, settings) -> list[Chunk]:
    """`chunk_document` as indexing calls it: sized in the embedder's tokens (at most
    `settings.chunk_tokens` and the model's limit), `settings.chunk_overlap_sentences` of overlap."""
    return chunk_document(
        doc,
        count_tokens=embedder.count_tokens,
        max_tokens=min(settings.chunk_tokens, embedder.max_tokens),
        overlap_sentences=settings.chunk_overlap_sentences,
    )


def index_documents(
    docs: list[Document], *, store, embedder, settings, second=None, progress: bool = True
) -> IngestReport:
    """Chunk, embed and store documents; unchanged ones are skipped, changed ones replaced.

    All vectors of a document are computed before the store is touched, and the store switches
    versions atomically (qa/store.py), so a failure or a kill leaves each document old or new.
    Embedded texts have their presentation forms folded (the embedder reads ordinary letters).
    `second`, when given, is the second embedder: its vectors of the same texts are stored too.
    """

    added, replaced, unchanged, total = [], [], [], 0
    for doc in tqdm(docs, desc="ingest", unit="doc", disable=not progress or len(docs) < 2):
        old_sha = store.document_sha(doc.id)
        if old_sha == doc.sha256:
            unchanged.append(doc.id)
            continue
        chunks = chunk_for_index(doc, embedder=embedder, settings=settings)
        spans = sorted({s for c in chunks for s in c.sentences})
        # One encode call for chunks and sentences: batching keeps the model busy.
        texts = [c.text for c in chunks] + [doc.text[s:e] for s, e in spans]
        folded = [qtext.fold_text(t) for t in texts]
        vectors = embedder.encode_documents(folded, progress=progress)
        store.replace_document(
            doc,
            chunks,
            vectors[: len(chunks)],
            dict(zip(spans, vectors[len(chunks) :], strict=True)),
            second=_second_vectors(second, chunks, spans, folded),
        )
        (replaced if old_sha else added).append(doc.id)
        total += len(chunks)
    return IngestReport(tuple(added), tuple(replaced), tuple(unchanged), total)


def _second_vectors(second, chunks: list[Chunk], spans: list[tuple[int, int]], folded: list[str]):
    """The second embedder's vectors of a document's chunk and sentence texts (None without one)."""
    if second is None:
        return None
    return DocVectors(second.name, len(chunks), tuple(spans), second.encode_documents(folded))


def add_kept_vectors(store, second=None, *, progress: bool = True) -> int:
    """Give every indexed document the vectors the documents record keeps for it; returns how many
    documents lacked some.

    For an index written before the record kept vectors (or before a second embedder was set): the
    index model's vectors are read back from Chroma, the second embedder's are computed from the
    texts. One document at a time, so a stop halfway keeps what was done.
    """

    main = set(store.records.missing_vectors(store.embedding_model))
    other = set(store.records.missing_vectors(second.name)) if second is not None else set()
    todo = sorted(main | other)
    for doc_id in tqdm(todo, desc="keeping vectors", unit="doc", disable=not progress or not todo):
        chunks = store.document_chunks(doc_id)
        if not chunks:  # removed meanwhile
            continue
        sha = chunks[0].doc_sha
        if doc_id in main and (kept := store.vectors_from_chroma(chunks)) is not None:
            store.put_doc_vectors(doc_id, sha, kept)
        if doc_id in other:
            by_span = {s: c for c in chunks for s in c.sentences}
            spans = sorted(by_span)
            texts = [c.text for c in chunks] + [by_span[s].text_of(*s) for s in spans]
            vectors = _second_vectors(second, chunks, spans, [qtext.fold_text(t) for t in texts])
            store.put_doc_vectors(doc_id, sha, vectors)
    return len(todo)
