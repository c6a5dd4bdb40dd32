"""Scans made from text we have: Arabic paragraphs typeset on page images, optionally degraded.

The OCR benchmark (bench/bench_ocr.py) and the OCR tests (tests/test_ocr.py) need scans whose text
is known exactly. Pillow typesets Arabic through libraqm (shaping and right-to-left order, as a
printer's software would), one paragraph after another, right-aligned, wrapped at the margins;
`degrade` adds what a scanner or a phone adds (noise, blur, a slight rotation); `image_pdf` wraps
page images in a PDF without a text layer, as a scanner writes one.

Leaves out: columns, headlines and photographs in the page (one column of body text), and paper
texture.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Fonts, best first: Noto Naskh Arabic (fonts-noto-core) is a newspaper's naskh; DejaVu Sans
# (fonts-dejavu-core, which the browser tests install too) is a sans-serif with Arabic glyphs.
FONTS = {
    "naskh": Path("/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf"),
    "dejavu": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
}
A4_INCHES = (8.27, 11.69)


@dataclass(frozen=True)
class Line:
    """A typeset line: the paragraph it belongs to (0-based), its text, and its box in pixels."""

    paragraph: int
    text: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Page:
    """A typeset page image (8-bit grayscale) and its lines."""

    image: Image.Image
    lines: tuple[Line, ...]


def typeset(
    paragraphs: list[str], *, dpi: int = 300, font: str | Path = "dejavu", points: float = 12
) -> list[Page]:
    """Paragraphs typeset right to left on A4 pages at `dpi`, `points` pt, 0.8 inch margins.

    Raises `FileNotFoundError` when the font is not installed.
    """
    path = FONTS.get(str(font), Path(font))
    face = ImageFont.truetype(str(path), round(points / 72 * dpi))
    width, height = round(A4_INCHES[0] * dpi), round(A4_INCHES[1] * dpi)
    margin, leading = round(0.8 * dpi), round(face.size * 1.7)
    pages: list[Page] = []
    image = draw = None
    lines: list[Line] = []
    y = margin

    def new_page():
        nonlocal image, draw, lines, y
        if image is not None:
            pages.append(Page(image, tuple(lines)))
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        lines, y = [], margin

    def put(index: int, text: str):
        nonlocal y
        if y + leading > height - margin:
            new_page()
        draw.text((width - margin, y), text, font=face, fill=0, anchor="ra", direction="rtl", language="ar")
        box = draw.textbbox((width - margin, y), text, font=face, anchor="ra", direction="rtl", language="ar")
        lines.append(Line(index, text, tuple(round(v) for v in box)))
        y += leading

    new_page()
    for index, paragraph in enumerate(paragraphs):
        line: list[str] = []
        for word in paragraph.split():
            trial = " ".join([*line, word])
            if (
                line
                and draw.textlength(trial, font=face, direction="rtl", language="ar") > width - 2 * margin
            ):
                put(index, " ".join(line))
                line = [word]
            else:
                line.append(word)
        if line:
            put(index, " ".join(line))
        y += leading // 2
    pages.append(Page(image, tuple(lines)))
    return pages


def degrade(image: Image.Image, *, noise: float = 0.0, blur: float = 0.0, angle: float = 0.0, seed: int = 0):
    """The page as a poor scan: `noise` (share of pixels flipped to random grey), Gaussian `blur`
    (radius, px) and a rotation by `angle` degrees (white fill)."""
    out = image
    if angle:
        out = out.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    if blur:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        rng = random.Random(seed)
        out = out.copy()
        pixels = out.load()
        for _ in range(int(noise * out.width * out.height)):
            pixels[rng.randrange(out.width), rng.randrange(out.height)] = rng.randrange(256)
    return out


def image_pdf(images: list[Image.Image], *, dpi: int = 300) -> bytes:
    """A PDF whose pages are these images and nothing else (no text layer), as a scanner writes one."""
    buffer = io.BytesIO()
    first, *rest = [i.convert("L") for i in images]
    first.save(buffer, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return buffer.getvalue()


def with_fallback(font: str | Path, fallback: str | Path, folder: Path) -> Path:
    """A font file (in `folder`, made once) with `font`'s glyphs and, for the characters it lacks,
    `fallback`'s, as a typesetter falls back to another font (Noto Naskh Arabic has no Latin letters,
    parentheses, quotes or hyphen: alone it prints them as empty boxes).

    Merged by fontTools (which matplotlib brings); both fonts need the same units per em (the Noto
    fonts have 1000), else `ValueError`. Where both map a character, `font`'s glyph is kept.
    """
    import logging

    from fontTools import merge
    from fontTools.ttLib import TTFont

    primary, second = (FONTS.get(str(f), Path(f)) for f in (font, fallback))
    out = Path(folder) / f"{primary.stem}+{second.stem}.ttf"
    if out.is_file():
        return out
    upm = {TTFont(str(p), lazy=True)["head"].unitsPerEm for p in (primary, second)}
    if len(upm) > 1:
        raise ValueError(f"{primary.name} and {second.name} have different units per em ({sorted(upm)})")
    logging.getLogger("fontTools.merge").setLevel(logging.ERROR)  # the fallback's duplicates dropped
    out.parent.mkdir(parents=True, exist_ok=True)
    merge.Merger().merge([str(primary), str(second)]).save(str(out))
    return out
