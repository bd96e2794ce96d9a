"""Measure the structural signals that classification scores: pure functions from text to numbers.

Each signal is a rate (per line, per 1,000 words or per 1,000 characters) so that a 4-page newsletter
and a 2,400-page reference manual are measured on the same scale. Where a signal needs words (exercise,
"said", "Issue"), the word lists cover English, German, French, Spanish, Russian and Japanese; the rest
(code punctuation, line shapes, quotes, numbering) is language-neutral by construction.
"""

from __future__ import annotations

import re
import statistics

from agentic_pipeline.ingest import text_stats

_M = re.MULTILINE
_I = re.IGNORECASE

_CODE_LINE = re.compile(
    r"""(?x)
    [;{}]\s*$                                  # C-like statement or block end
    | ^\s*[{}]\s*$
    | ^\s*(\$|\#|%|>>>|>|\w+@[\w.-]+:?\S*[$\#])\s+\S   # shell / REPL prompt
    | ^\s*\#\s*(include|define|ifdef|endif)\b
    | <-|->|::|==|!=|&&|\|\||\+\+|\+=
    | ^\s*\\[A-Za-z]+\s*[{\[]                  # LaTeX / LilyPond command
    | \b\w+\([^()\s]*\)\s*[;{:]?\s*$           # call or signature at line end
    | ^\s*(def|class|import|return|for|while|if|else|elif|int|void|char|const|static|struct|public|private|template|typedef|echo|sudo|apt|apt-get|cd|ls|export)\b[^.!?]*$
    """
)
_PROMPT = re.compile(r"^\s*(\$|#|>>>|>|\w+@[\w.-]+:?\S*[$#])\s+[\w./-]", _M)
_TECH_TOKEN = re.compile(r"(?:/[\w.-]+){2,}|--?[a-z][\w-]+|\b[a-z]+_[a-z_]+\b|\b\w+\(\)|\b[a-z]+[A-Z]\w*\b|\\[a-zA-Z]{2,}")
_API_HEADER = re.compile(
    r"^\s*(Usage|Arguments|Value|Details|Description|Examples|See Also|Parameters|Returns?|Return value|"
    r"Synopsis|Syntax|Options|Raises|Exceptions|Format|Source|References|Note|Author\(s\)|"
    r"Verwendung|Argumente|Rückgabewert|Syntaxe|Paramètres|Параметры|Синтаксис|書式|引数|戻り値|説明|用法)\s*:?\s*$",
    _M,
)
_TEXTBOOK = re.compile(
    r"\b(exercises?|problems?|theorem|proof|lemma|corollary|definition|proposition|solutions?|hint|"
    r"aufgaben?|übungen?|satz|beweis|lösung|exercices?|théorème|preuve|ejercicios?|teorema|demostración|"
    r"упражнени\w*|задач\w*|теорем\w*|доказательств\w*|лемм\w*|определени\w*)\b|演習|定理|証明|補題|練習問題",
    _I,
)
_MATH_CHARS = re.compile(r"[∈∉∑∏∫≤≥≠≈≡→⇒⇔∀∃∪∩⊆⊂⊇⊃∅ℕℤℚℝ√∞±×÷·∘¬∧∨]")
_OPEN_QUOTE = re.compile(r"(?:^|[\s(—–-])[“\"«„「『‘](?=\w)|[「『]", _M)
_SAID = re.compile(
    r"\b(said|says|asked|replied|cried|answered|whispered|exclaimed|shouted|sagte|fragte|antwortete|rief|"
    r"dit|demanda|répondit|dijo|preguntó|respondió|сказал\w*|спросил\w*|ответил\w*|закричал\w*)\b|と(云|言)[うっいわ]|と聞",
    _I,
)
_STAGE = re.compile(r"^\s*(\[?\s*(Enter|Exit|Exeunt|Re-enter|Aside)\b|(ACT|SCENE|Act|Scene)\s+[IVX\d]+\b)", _M)
_SPEAKER = re.compile(r"^\s*[A-Z][A-Z'’ .-]{1,25}\.?\s*$", _M)
_PERIODICAL = re.compile(
    r"\b(issue|issues|volume|vol\.|newsletter|magazine|editor|editorial|subscribe|subscription|quarterly|monthly|"
    r"ausgabe|heft|zeitschrift|numéro|revue|número|revista|выпуск|журнал|номер)\b|号|月刊|創刊",
    _I,
)
_ISSUE_NO = re.compile(
    r"\b(Issue|Vol\.?|Volume|No\.|Number|Ausgabe|Heft|Numéro|Número|Выпуск)\s*\d+|"
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\s+(19|20)\d\d\b"
)
_ACADEMIC = re.compile(
    r"^\s*(\d+\.?\s*)?(Abstract|Keywords|References|Bibliography|Acknowledg(e)?ments|Introduction|Conclusions?|"
    r"Zusammenfassung|Literatur(verzeichnis)?|Résumé|Références|Resumen|Аннотация|Литература|要旨|参考文献)\s*:?",
    _M | _I,
)
_CITATION = re.compile(
    r"\[\d{1,3}(?:[,–-]\s?\d{1,3})*\]|\([A-Z][\w'-]+(?: et al\.| and [A-Z][\w'-]+| & [A-Z][\w'-]+)?,? (19|20)\d\d[a-z]?\)|"
    r"[A-Z][\w'-]+(?: et al\.| and [A-Z][\w'-]+)? \((19|20)\d\d[a-z]?\)|\bet al\.|\bdoi:|\bdoi\.org"
)
_FIRST_PERSON = re.compile(r"\b(I|me|my|myself|ich|mich|mir|mein\w*|je|moi|yo|я|меня|мне|мой|моя)\b|余は|余が|私は|私が|吾輩|僕", )
_SECOND_PERSON = re.compile(r"\b(you|your|yours|Sie|Ihr\w*|vous|votre|usted|вы|вам|вас|ваш\w*)\b|あなた|下さい|ください", )
_NARRATIVE = re.compile(
    r"\b(was|had|were|said|went|came|looked|felt|thought|war|hatte|ging|kam|était|avait|fue|había|"
    r"был|была|было|были|сказал)\b|た。",
)
_CHAPTER = re.compile(r"^\s*(chapter|kapitel|chapitre|capítulo|глава|book|part|teil)\s+([IVXLC\d]+|[a-z]+)\b|^\s*第[一二三四五六七八九十百\d]+[章回部]", _M | _I)
_SECTION_NO = re.compile(r"^\s*\d+(\.\d+){1,3}\.?\s+\S", _M)
_TABLE = re.compile(r"^\s*(Table|Tabelle|Tableau|Tabla|Таблица)\s+\d|^\s*表\s*\d", _M)
_SPEC = re.compile(
    r"\b(defined|denotes?|specif\w+|semantics|syntax|evaluat\w+|formal(ly)?|grammar|conform\w*|definiert|semantik|"
    r"syntaxe|sémantique|sintaxis|семантик\w*|синтаксис\w*)\b|仕様|構文",
    _I,
)
_EXAMPLE = re.compile(r"\b(example|for instance|let's|let us|step|tutorial|beispiel|zum beispiel|schritt|exemple|ejemplo|пример\w*)\b|例えば|例:", _I)


def _per(count: int, base: int, scale: int = 1000) -> float:
    return round(scale * count / base, 3) if base else 0.0


def line_shape(lines: list[str]) -> dict[str, float]:
    """Describe how lines are laid out: share of short lines and of capitalised short lines (verse)."""
    lengths = [len(line) for line in lines]
    if not lengths:
        return {"short_line_ratio": 0.0, "verse_ratio": 0.0, "median_line_len": 0.0}
    wide = sorted(lengths)[int(0.9 * (len(lengths) - 1))] or 1
    short = [line for line in lines if len(line) < 0.6 * wide and len(line) >= 12]
    verse = [
        line for line in short
        if line[:1].isupper() and not _CODE_LINE.search(line) and not line.rstrip().endswith((":",))
        and len(line.split()) >= 3
    ]
    return {
        "short_line_ratio": round(len(short) / len(lines), 3),
        "verse_ratio": round(len(verse) / len(lines), 3),
        "median_line_len": float(statistics.median(lengths)),
    }


def measure(text: str) -> dict[str, float]:
    """Measure every signal on ``text`` and return them by name (all rates, no absolute counts but words)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    n_lines = len(lines)
    words = text_stats.count_words(text)
    chars = len(text)
    code_lines = sum(1 for line in lines if _CODE_LINE.search(line))
    signals = {
        "words": float(words),
        "code_line_ratio": round(code_lines / n_lines, 3) if n_lines else 0.0,
        "prompt_per_kline": _per(len(_PROMPT.findall(text)), n_lines),
        "tech_tokens_per_kword": _per(len(_TECH_TOKEN.findall(text)), words),
        "api_headers_per_kline": _per(len(_API_HEADER.findall(text)), n_lines),
        "textbook_terms_per_kword": _per(len(_TEXTBOOK.findall(text)), words),
        "math_per_kchar": _per(len(_MATH_CHARS.findall(text)), chars),
        "quotes_per_kword": _per(len(_OPEN_QUOTE.findall(text)), words),
        "said_per_kword": _per(len(_SAID.findall(text)), words),
        "stage_per_kline": _per(len(_STAGE.findall(text)), n_lines),
        "speaker_per_kline": _per(len(_SPEAKER.findall(text)), n_lines),
        "periodical_per_kword": _per(len(_PERIODICAL.findall(text)), words),
        "issue_marks_per_kword": _per(len(_ISSUE_NO.findall(text)), words),
        "academic_heads_per_kline": _per(len(_ACADEMIC.findall(text)), n_lines),
        "citations_per_kword": _per(len(_CITATION.findall(text)), words),
        "first_person_per_kword": _per(len(_FIRST_PERSON.findall(text)), words),
        "second_person_per_kword": _per(len(_SECOND_PERSON.findall(text)), words),
        "narrative_per_kword": _per(len(_NARRATIVE.findall(text)), words),
        "chapter_heads_per_kword": _per(len(_CHAPTER.findall(text)), words),
        "section_numbers_per_kline": _per(len(_SECTION_NO.findall(text)), n_lines),
        "tables_per_kword": _per(len(_TABLE.findall(text)), words),
        "spec_terms_per_kword": _per(len(_SPEC.findall(text)), words),
        "example_per_kword": _per(len(_EXAMPLE.findall(text)), words),
    }
    signals.update(line_shape(lines))
    return signals
