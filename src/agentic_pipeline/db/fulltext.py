"""Full-text query language and CJK n-grams (pure): one parse, rendered for FTS5 and for PostgreSQL.

Why not pass the query through? ``MATCH`` and ``to_tsquery`` treat quotes, ``-``, ``:`` and
parentheses as syntax (a typed ``NEAR(`` was an SQL error), and ORing every word let a stop word
("the") match nearly every chunk, so ranking had to score the whole library. The query is parsed
here, ``websearch_to_tsquery``-style:

* words are all required (``strict``); when that finds nothing, ``relaxed`` accepts any of the
  words that are not stop words (a query of stop words only stays strict);
* ``"quoted words"`` must appear as a phrase; ``-word`` / ``-"a phrase"`` exclude;
* CJK text has no spaces, so neither FTS5's ``unicode61`` nor PostgreSQL's ``simple`` parser can
  find a word inside a sentence. The write path stores each chunk's CJK runs as overlapping
  character bigrams (``東京都`` -> ``東京 京都 都``: every bigram, then the run's last character) in
  ``chunks.search_grams``; a CJK query becomes the phrase of its own bigrams there, which matches
  exactly the chunks holding that string (a one-character query is a prefix match on the grams).
"""

from __future__ import annotations

import dataclasses
import re

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
_CJK_RUN = re.compile(f"[{_CJK_RANGES}]+")
_WORD = re.compile(f"[^\\W_{_CJK_RANGES}]+|[{_CJK_RANGES}]+", re.UNICODE)
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
MAX_CLAUSES = 32

#: common words that alone would match most of a library (English plus the languages the detector knows)
STOP_WORDS = frozenset("""
a an and are as at be but by for from had has have he her his i if in into is it its me my no not of on or
our she so such that the their them then there these they this to was we were what when where which who
will with you your
der die das und ist nicht mit den ein eine auch sich von zu im dem es auf für
le la les et des est un une dans que pour pas qui sur du au avec ce il
el los las y en por con para se del al su lo como
di che e per non sono della si gli nel
o os um para com não do da em no na
het een en van dat op te zijn voor
""".split())


def is_cjk(word: str) -> bool:
    return bool(_CJK_RUN.fullmatch(word))


def grams(run: str) -> list[str]:
    """Overlapping character bigrams of one CJK run, then its last character (so a prefix finds it)."""
    if len(run) == 1:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)] + [run[-1]]


def search_grams(text: str) -> str | None:
    """What the write path stores in ``chunks.search_grams``: the CJK bigrams of ``text``, or None."""
    runs = _CJK_RUN.findall(text)
    if not runs:
        return None
    return " ".join(g for run in runs for g in grams(run))


@dataclasses.dataclass(frozen=True, slots=True)
class Clause:
    """One unit of a query: a word, a phrase of words, or a CJK string (matched on its grams)."""

    words: tuple[str, ...]
    cjk: bool = False
    negated: bool = False
    #: the text as typed, for PostgreSQL's own parser (``read.table`` is one token there, two in FTS5)
    raw: str = ""

    @property
    def is_stop(self) -> bool:
        return not self.cjk and len(self.words) == 1 and self.words[0] in STOP_WORDS


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    clauses: tuple[Clause, ...]

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negated)

    @property
    def negative(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if c.negated)

    def relaxed(self) -> "Query | None":
        """Any of the content words instead of all of them; None when that would change nothing."""
        keep = [c for c in self.positive if not c.is_stop]
        if not keep or (len(keep) < 2 and len(keep) == len(self.positive)):
            return None  # stop words alone stay strict: any of them would match nearly every chunk
        return Query(tuple(keep) + self.negative)

    def indexed(self) -> "Query":
        """What the full-text index is asked: lone stop words dropped when a content word remains.

        A stop word filters almost nothing (nearly every chunk has "the") but costs the most: BM25
        reads a term's whole posting list for its document frequency (at 220,000 chunks, 110 ms for
        "the" against 0.6 ms without ranking). Phrases keep their stop words.
        """
        if all(c.is_stop for c in self.positive):
            return self
        return Query(tuple(c for c in self.clauses if c.negated or not c.is_stop))

    @property
    def only_stop_words(self) -> bool:
        return bool(self.positive) and all(c.is_stop for c in self.positive)

    @property
    def terms(self) -> list[str]:
        """Every positive word (for snippets and the exact-match boost)."""
        return [w for c in self.positive for w in c.words]


def parse(text: str) -> Query:
    """``"phrase"``, ``-exclusion`` and plain words, websearch style; any other punctuation is a separator."""
    clauses: list[Clause] = []
    for m in _TOKEN.finditer(text or ""):
        negated = bool(m.group(1) if m.group(2) is not None else m.group(3))
        body = m.group(2) if m.group(2) is not None else m.group(4)
        words = [w.lower() for w in _WORD.findall(body)]
        clauses.extend(_phrase_clauses(words, negated, body))
    return Query(tuple(_dedupe(clauses))[:MAX_CLAUSES])


def _phrase_clauses(words: list[str], negated: bool, raw: str) -> list[Clause]:
    """A quoted phrase or one typed token: its words are one phrase clause; CJK runs are their own."""
    if not any(is_cjk(w) for w in words):
        return [Clause(tuple(words), negated=negated, raw=raw.lower())] if words else []
    out: list[Clause] = []
    latin: list[str] = []
    for w in words + [""]:
        if (not w or is_cjk(w)) and latin:
            out.append(Clause(tuple(latin), negated=negated, raw=" ".join(latin)))
            latin = []
        if w and is_cjk(w):
            out.append(Clause((w,), cjk=True, negated=negated, raw=w))
        elif w:
            latin.append(w)
    return out


def _dedupe(clauses: list[Clause]) -> list[Clause]:
    seen: set[Clause] = set()
    return [c for c in clauses if not (c in seen or seen.add(c))]


def excludes(query: Query, text: str) -> bool:
    """True when ``text`` holds a clause the query excludes (``-word``): vector hits obey it too."""
    if not query.negative:
        return False
    words = [w.lower() for w in _WORD.findall(text)]
    flat = " " + " ".join(words) + " "
    for c in query.negative:
        if (c.cjk and c.words[0] in text) or (not c.cjk and " " + " ".join(c.words) + " " in flat):
            return True
    return False


# --------------------------------------------------------------------------- SQLite FTS5


def _fts5_clause(c: Clause) -> str:
    if c.cjk:
        run = c.words[0]
        if len(run) == 1:
            return f'search_grams : "{run}" *'
        return 'search_grams : "' + " ".join(grams(run)[:-1]) + '"'
    return '"' + " ".join(c.words) + '"'


def fts5_match(query: Query, *, any_of: bool = False) -> str | None:
    """An FTS5 MATCH expression, or None when the query has no positive clause."""
    pos = query.positive
    if not pos:
        return None
    joiner = " OR " if any_of else " AND "
    expr = "(" + joiner.join(f"({_fts5_clause(c)})" for c in pos) + ")"
    for c in query.negative:
        expr += f" NOT ({_fts5_clause(c)})"
    return expr


# --------------------------------------------------------------------------- PostgreSQL tsquery


def _ts_clause(c: Clause, name: str) -> tuple[str, str]:
    """(SQL, parameter value): CJK as the phrase of its grams, other text through PostgreSQL's parser."""
    if c.cjk:
        run = c.words[0]
        if len(run) == 1:
            return f"to_tsquery('simple', :{name})", f"'{run}':*"
        return f"to_tsquery('simple', :{name})", " <-> ".join(f"'{g}'" for g in grams(run)[:-1])
    return f"phraseto_tsquery('simple', :{name})", c.raw or " ".join(c.words)


def pg_tsquery(query: Query, *, any_of: bool = False) -> tuple[str, dict[str, str]] | None:
    """A tsquery SQL expression and its bound parameters, or None when the query has no positive clause."""
    pos = query.positive
    if not pos:
        return None
    params: dict[str, str] = {}
    parts = []
    for i, c in enumerate(query.clauses):
        sql, params[f"tq{i}"] = _ts_clause(c, f"tq{i}")
        parts.append((c, sql))
    expr = "(" + (" || " if any_of else " && ").join(sql for c, sql in parts if not c.negated) + ")"
    for c, sql in parts:
        if c.negated:
            expr = f"({expr} && !!{sql})"
    return expr, params
