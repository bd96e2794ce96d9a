"""Control characters made visible: one helper for every text output and log line.

A file name or title may hold a newline, a carriage return, an escape sequence or a tab. Printed
as is, it forges a log line, moves the cursor or recolours the terminal; ``printable`` turns each
such character into a visible escape (``\\n``, ``\\x1b``, ``\\u202e``) and leaves everything else,
including non-Latin letters, as it is. JSON output needs no help (the encoder escapes them).
"""

from __future__ import annotations

import re
from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
# C0, DEL, C1, and the Unicode format/separator characters that reorder or break lines (bidi overrides,
# line and paragraph separators, zero-width joiners are left alone: they are part of some scripts)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """``value`` as one line of text with every control character shown as an escape (None -> "")."""
    if value is None:
        return ""
    text = str(value)
    if not _UNSAFE.search(text):
        return text
    # backslashes are escaped only when something else is, so ordinary Windows paths stay readable
    return re.sub(r"[\\]|" + _UNSAFE.pattern, _escape, text)


def has_control(value: Any) -> bool:
    return value is not None and _UNSAFE.search(str(value)) is not None


__all__ = ["printable", "has_control"]
