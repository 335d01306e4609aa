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

__all__ = ["PatternSet", "UserRegex", "compile_user_regex", "warn_unusable_pattern"]

_log = logging.getLogger(__name__)
# A cap on the memory RE2 may use for one compiled pattern (program + lazy DFA). Past it the compile fails
# (pattern too large -> 400) or matching falls back to RE2's NFA, which is slower but still linear.
_MAX_MEM_BYTES = 2 << 20
_warned: set[str] = set()


_UNANCHORED = re2._Anchor.UNANCHORED
_NO_MATCH = (-1, -1)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8 encoded; RE2 then sees bytes that match no character class.
        return text.encode("utf-8", "surrogatepass")


class UserRegex:
    """A compiled RE2 pattern; ``matches(text)`` says whether it occurs anywhere in ``text`` (a search).

    Calls RE2's own ``Match`` on UTF-8 bytes without capture groups: the ``re``-like wrapper of the binding
    builds match objects and maps byte offsets back to characters, about 6x the cost of the match itself.
    """

    __slots__ = ("_match", "pattern")

    def __init__(self, regex: Any, pattern: str) -> None:
        self._match = regex._regexp.Match
        self.pattern = pattern

    def matches(self, text: str) -> bool:
        data = _utf8(text)
        return self._match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH


class PatternSet:
    """Many trusted patterns searched in one pass (RE2::Set); ``matching(text)`` -> indices that match.

    Only for patterns we ship (the built-in price table): when a set's DFA runs out of memory RE2 reports
    no match rather than falling back, so user patterns, which could be built to do that, stay single.
    """

    __slots__ = ("_match", "size")

    def __init__(self, patterns: list[str]) -> None:
        options = re2.Options()
        options.max_mem = 64 << 20
        options.log_errors = False
        regex_set = re2.Set.SearchSet(options)
        for pattern in patterns:
            try:
                regex_set.Add(pattern)
            except re2.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {_error_text(exc)}") from exc
        regex_set.Compile()
        self._match = regex_set._set.Match
        self.size = len(patterns)

    def matching(self, text: str) -> list[int]:
        return self._match(_utf8(text))


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
    options.never_capture = True  # only "does it match" is ever asked
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
    _log.warning(
        "%s %r cannot be run by the linear-time regex engine; it never matches: %s", what, pattern, exc
    )
