"""Language-neutral text statistics shared by extraction, classification and validation.

Pure functions over ``str``: no I/O, no state.
"""

from __future__ import annotations

import re

# CJK ideographs, hiragana, katakana, hangul syllables: each counts as one word,
# since these scripts do not separate words with spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
_HAS_CJK = re.compile(f"[{_CJK}]")
_CJK_RUN = re.compile(f"[{_CJK}]+")

# --- garbage heuristics -------------------------------------------------------------
# A token (whitespace-separated run) is "garbage" when any of these holds:
#  1. glyph names leaked instead of characters, as pdfTeX small caps / old-style figures
#     produce without a ToUnicode map: "/x.sc/e.sc", "/one.osf", "/uni0416", "/g123";
#  2. it holds U+FFFD, a private-use code point or a C0/C1 control character: bytes the
#     decoder could not map;
#  3. UTF-8 read as Latin-1 ("dÃ©jÃ "): "Ã" or "Â" followed by a C1/Latin-1 punctuation char;
#  4. 8-bit Cyrillic/Greek read as Latin-1 ("Ïëàâàþùèå" for "Плавающие"): at least 3 letters,
#     and 70 % or more of them in U+00C0-U+00FF. Real French, German or Czech words carry
#     at most a few accented letters each ("élève" 40 %, "Straße" 17 %), so they stay clean.
_GLYPH_SUFFIX = r"(?:sc|c2sc|smcp|osf|lf|tf|tosf|sups|sinf|numr|dnom|swash|alt\d?|ss\d\d|cap|ts1|oldstyle|taboldstyle)"
_GLYPH_NAME = re.compile(rf"/[A-Za-z][A-Za-z0-9]*\.{_GLYPH_SUFFIX}\b|/uni[0-9A-F]{{4}}\b")
_BAD_CHAR = re.compile("[\ufffd\ue000-\uf8ff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_UTF8_AS_LATIN1 = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")
_LATIN1_LETTER = re.compile("[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]")
_LETTER = re.compile(r"[^\W\d_]")
# punctuation that may wrap a word; none of it is a letter, a "/" or a suspicious character
_EDGE_PUNCTUATION = "\"'()[]{}<>.,;:!?-*\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb"


def count_words(text: str) -> int:
    """Count words; each CJK character counts as one word (those scripts use no spaces).

    Text without CJK takes the fast path (``str.split``). With CJK, the characters of each CJK
    run are counted and the run is swapped for a space before the rest is split: the same count
    as matching ``_WORD`` over the text, four times as fast (a regex step per run, not per character).
    """
    if text.isascii() or not _HAS_CJK.search(text):
        return len(text.split())
    runs = _CJK_RUN.findall(text)
    return sum(map(len, runs)) + len(_CJK_RUN.sub(" ", text).split())


def judge_token(token: str) -> bool | None:
    """Whether one whitespace-free token looks mis-decoded (see the module notes).

    ``None`` when the token is too short to tell (fewer than 3 letters and no tell-tale sign):
    numbers, punctuation and short words are left out of the ratio rather than counted clean.
    """
    if _GLYPH_NAME.search(token) or _BAD_CHAR.search(token) or _UTF8_AS_LATIN1.search(token):
        return True
    letters = len(_LETTER.findall(token))
    if letters < 3:
        return None
    return len(_LATIN1_LETTER.findall(token)) >= 0.7 * letters


def garbage_ratio(text: str) -> float:
    """Share of tokens (0.0-1.0) that look like a broken text layer rather than language.

    Clean prose in any language scores near 0 (URLs, code and formulas stay under ~0.02);
    Latin-1 mojibake of Cyrillic scores about 0.8. Only tokens that can be judged count (see
    ``judge_token``); text with none of them scores 0. A plain ASCII word (letters only, once
    common punctuation is stripped from its ends) is judged without regexes: clean when it has
    3 letters or more, the same verdict ``judge_token`` gives, several times faster.
    """
    judged = bad = 0
    for token in text.split():
        core = token.strip(_EDGE_PUNCTUATION)
        if core.isascii() and core.isalpha():
            judged += len(core) >= 3
            continue
        verdict = judge_token(token)
        if verdict is not None:
            judged += 1
            bad += verdict
    return bad / judged if judged else 0.0


def sample_text(text: str, *, budget: int = 200_000, slices: int = 20) -> str:
    """Up to ``budget`` characters taken evenly from ``text``: enough to judge, cheap on big books."""
    if len(text) <= budget:
        return text
    size = budget // slices
    step = len(text) // slices
    return "\n".join(text[i * step : i * step + size] for i in range(slices))
