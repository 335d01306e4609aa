"""User-supplied regular expressions, run by RE2 (``google-re2``) so a match takes linear time.

Python's ``re`` backtracks: a pattern such as ``^(a+)+$`` against ``"a" * 30 + "!"`` runs for minutes, and
a model pattern is matched on the single ingestion writer thread, so one project could stall every
project. RE2 has no backtracking (and so no back-references or look-around); patterns that need those are
refused when they are saved (``ValueError``, a 400) and skipped, never matched, when an older stored row
has one. Never fall back to ``re`` for a pattern a user wrote.
"""

from __future__ import annotations

import logging
from typing import Any

import re2

__all__ = ["UserRegex", "compile_user_regex", "warn_unusable_pattern"]

_log = logging.getLogger(__name__)
# A cap on the memory RE2 may use for one compiled pattern (program + lazy DFA). Past it the compile fails
# (pattern too large -> 400) or matching falls back to RE2's NFA, which is slower but still linear.
_MAX_MEM_BYTES = 2 << 20
_warned: set[str] = set()


class UserRegex:
    """A compiled RE2 pattern with ``search(text)`` -> a match object or None, like ``re.Pattern``."""

    __slots__ = ("_regex", "pattern")

    def __init__(self, regex: Any, pattern: str) -> None:
        self._regex = regex
        self.pattern = pattern

    def search(self, text: str) -> Any:
        try:
            return self._regex.search(text)
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8 encoded; RE2 then sees bytes that match no character class.
            return self._regex.search(text.encode("utf-8", "surrogatepass"))


def _error_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def compile_user_regex(pattern: str, *, case_sensitive: bool = True) -> UserRegex:
    """Compile ``pattern`` (RE2 syntax) or raise ValueError with a message fit for a 400 response."""
    if not isinstance(pattern, str):
        raise ValueError("pattern must be a string")
    options = re2.Options()
    options.max_mem = _MAX_MEM_BYTES
    options.log_errors = False  # RE2 would print every rejected user pattern on stderr
    options.case_sensitive = case_sensitive
    try:
        return UserRegex(re2.compile(pattern, options), pattern)
    except re2.error as exc:
        raise ValueError(f"invalid regular expression: {_error_text(exc)}") from exc
    except UnicodeEncodeError as exc:
        raise ValueError("invalid regular expression: lone surrogate character") from exc


def warn_unusable_pattern(what: str, pattern: Any, exc: Exception) -> None:
    """Log once per pattern that a stored pattern can no longer be run (it is skipped, never matched)."""
    key = f"{what}\x00{pattern!r}"
    if key in _warned or len(_warned) > 10_000:
        return
    _warned.add(key)
    _log.warning("%s %r cannot be run by the linear-time regex engine; it never matches: %s", what, pattern, exc)
