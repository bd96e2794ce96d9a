"""Language-neutral text statistics shared by extraction, classification and validation."""

from __future__ import annotations

import re

# CJK ideographs, hiragana, katakana, hangul syllables: each counts as one word,
# since these scripts do not separate words with spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def count_words(text: str) -> int:
    return sum(1 for _ in _WORD.finditer(text))
