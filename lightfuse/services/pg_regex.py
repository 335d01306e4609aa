"""Postgres regular expressions (ARE) translated to Python ``re``.

Model match patterns are Postgres regexes (Langfuse matches them with ``~``); usage-condition patterns too.
Translating them keeps price tables portable between Langfuse and Lightfuse and works on SQLite.
"""

from __future__ import annotations

import functools
import re

# POSIX bracket classes as Python class bodies (ASCII, i.e. the C locale).
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
}
_WORD_START = r"\b(?=\w)"
_WORD_END = r"\b(?<=\w)"
# ARE escapes whose Python spelling is identical.
_SAME_ESCAPES = set("dDsSwWAZtnrfva")
# ARE \b is a backspace (a word boundary in Python), \B a literal backslash, \e ESC.
_CHAR_ESCAPES = {"b": "\\x08", "B": "\\\\", "e": "\\x1b"}
# Word-boundary constraints: \m start, \M end, \y either, \Y neither.
_CONSTRAINT_ESCAPES = {"m": _WORD_START, "M": _WORD_END, "y": "\\b", "Y": "\\B"}
_DUPMAX = 255  # Postgres' upper limit for {m,n} bounds
# Embedded options are only legal at the very start of an ARE, e.g. the "(?i)" every built-in pattern uses.
_EMBEDDED_OPTIONS = re.compile(r"\(\?([A-Za-z]+)\)")


def _read_escape(pattern: str, i: int, in_bracket: bool) -> tuple[str, int]:
    """Translate the escape starting at pattern[i] == '\\'; returns (python text, next index)."""
    if i + 1 >= len(pattern):
        raise ValueError("invalid escape \\ sequence: pattern ends with a backslash")
    c = pattern[i + 1]
    j = i + 2
    if not c.isalnum():
        return re.escape(c), j
    if c in _SAME_ESCAPES and not (in_bracket and c in "AZ"):
        return "\\" + c, j
    if c in _CHAR_ESCAPES:
        return _CHAR_ESCAPES[c], j
    if c == "c":
        if j >= len(pattern):
            raise ValueError("invalid escape \\c at end of pattern")
        return re.escape(chr(ord(pattern[j]) & 0x1F)), j + 1
    if c in "uU":
        width = 4 if c == "u" else 8
        digits = pattern[j : j + width]
        if len(digits) != width or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
            raise ValueError(f"invalid escape \\{c} sequence")
        return re.escape(chr(int(digits, 16))), j + width
    if c == "x":  # ARE takes any number of hex digits
        k = j
        while k < len(pattern) and pattern[k] in "0123456789abcdefABCDEF":
            k += 1
        if k == j:
            raise ValueError("invalid escape \\x sequence")
        return re.escape(chr(int(pattern[j:k], 16))), k
    if c == "0":  # octal
        k = j
        while k < len(pattern) and k < j + 2 and pattern[k] in "01234567":
            k += 1
        return re.escape(chr(int(pattern[i + 1 : k], 8))), k
    if not in_bracket:
        if c in _CONSTRAINT_ESCAPES:
            return _CONSTRAINT_ESCAPES[c], j
        if c.isdigit():  # back-reference
            k = j
            while k < len(pattern) and pattern[k].isdigit():
                k += 1
            return "\\" + pattern[i + 1 : k], k
    raise ValueError(f"invalid escape \\{c} sequence")


def _read_bracket(pattern: str, i: int, newline_sensitive: bool) -> tuple[str, int]:
    """Translate a bracket expression starting at pattern[i] == '['; returns (python text, next index)."""
    n = len(pattern)
    # Postgres' special word-boundary brackets.
    if pattern.startswith("[[:<:]]", i):
        return _WORD_START, i + 7
    if pattern.startswith("[[:>:]]", i):
        return _WORD_END, i + 7
    j = i + 1
    negate = j < n and pattern[j] == "^"
    if negate:
        j += 1
    parts: list[str] = []
    first = True
    while True:
        if j >= n:
            raise ValueError("brackets [] not balanced")
        c = pattern[j]
        if c == "]" and not first:
            j += 1
            break
        first = False
        if c == "[" and j + 1 < n and pattern[j + 1] in ":.=":
            kind = pattern[j + 1]
            end = pattern.find(kind + "]", j + 2)
            if end < 0:
                raise ValueError("brackets [] not balanced")
            name = pattern[j + 2 : end]
            j = end + 2
            if kind == ":":
                if name not in _POSIX_CLASSES:
                    raise ValueError(f"invalid character class [:{name}:]")
                parts.append(_POSIX_CLASSES[name])
            elif len(name) == 1:  # [.x.] / [=x=]: only single-character elements exist in practice
                parts.append(re.escape(name))
            else:
                raise ValueError(f"invalid collating element [{kind}{name}{kind}]")
            continue
        if c == "\\":
            text, j = _read_escape(pattern, j, in_bracket=True)
        else:
            text, j = re.escape(c) if c != "-" else "\\-", j + 1
        # A '-' between two elements is a range operator; first/last '-' is literal (already escaped above).
        if j + 1 < n and pattern[j] == "-" and pattern[j + 1] != "]":
            hi = pattern[j + 1]
            if hi == "\\":
                hi_text, j = _read_escape(pattern, j + 1, in_bracket=True)
            elif hi == "[":
                raise ValueError("invalid range endpoint")
            else:
                hi_text, j = re.escape(hi), j + 2
            text = f"{text}-{hi_text}"
        parts.append(text)
    if negate and newline_sensitive:
        parts.append("\\n")  # newline-sensitive mode: a negated bracket never matches a newline
    return "[" + ("^" if negate else "") + "".join(parts) + "]", j


def _translate_are(pattern: str) -> tuple[str, int]:
    """Translate a Postgres advanced regular expression into (python pattern, re flags)."""
    body = pattern
    if body.startswith("***="):
        return re.escape(body[4:]), 0
    if body.startswith("***:"):
        body = body[4:]
    ignore_case = verbose = newline_sensitive = False
    leading = _EMBEDDED_OPTIONS.match(body)
    if leading is not None:
        body = body[leading.end() :]
        for opt in leading.group(1):
            if opt in "ic":
                ignore_case = opt == "i"
            elif opt in "nms":  # n/m: newline-sensitive; s: Postgres' default
                newline_sensitive = opt != "s"
            elif opt in "xt":  # expanded / tight syntax
                verbose = opt == "x"
            elif opt == "q":  # the rest is a literal string
                return re.escape(body), re.IGNORECASE if ignore_case else 0
            else:
                # b/e (basic/extended syntax), p/w (partial newline modes): never seen in match patterns.
                raise ValueError(f"unsupported embedded option '{opt}'")
    # Default (non-newline-sensitive) mode: '.' matches a newline and '$' only matches at the very end; in
    # newline-sensitive mode both behave like Python's MULTILINE without DOTALL.
    flags = (re.MULTILINE if newline_sensitive else re.DOTALL) | (re.IGNORECASE if ignore_case else 0)
    flags |= re.VERBOSE if verbose else 0
    dollar_at_end_only = not newline_sensitive

    out: list[str] = []
    i, n = 0, len(body)
    after_quantifier = False  # Postgres rejects stacked quantifiers (Python would read them as possessive)
    while i < n:
        c = body[i]
        if c == "\\":
            text, i = _read_escape(body, i, in_bracket=False)
            out.append(text)
            after_quantifier = False
        elif c == "[":
            text, i = _read_bracket(body, i, newline_sensitive)
            out.append(text)
            after_quantifier = False
        elif c == "(":
            if body.startswith("(?#", i):  # comment
                end = body.find(")", i)
                if end < 0:
                    raise ValueError("unterminated comment")
                i = end + 1
                continue
            if body.startswith("(?", i) and not any(
                body.startswith(p, i) for p in ("(?:", "(?=", "(?!", "(?<=", "(?<!")
            ):
                raise ValueError("invalid (? construct (only (?: (?= (?! (?<= (?<! are allowed)")
            out.append("(")
            i += 1
            after_quantifier = False
        elif c in "*+?" or (c == "{" and i + 1 < n and body[i + 1].isdigit()):
            if after_quantifier:
                raise ValueError("quantifier operand invalid")
            if c == "{":
                end = body.find("}", i)
                bound = body[i + 1 : end] if end > 0 else ""
                m = re.fullmatch(r"(\d+)(,(\d*))?", bound)
                if m is None:
                    raise ValueError("invalid repetition count(s)")
                lo, hi = int(m.group(1)), (int(m.group(3)) if m.group(3) else None)
                if lo > _DUPMAX or (hi is not None and (hi > _DUPMAX or hi < lo)):
                    raise ValueError("invalid repetition count(s)")
                out.append(body[i : end + 1])
                i = end + 1
            else:
                out.append(c)
                i += 1
            if i < n and body[i] == "?":  # non-greedy marker belongs to this quantifier
                out.append("?")
                i += 1
            after_quantifier = True
        elif c == "{":  # '{' not starting a bound is an ordinary character in ARE
            out.append("\\{")
            i += 1
            after_quantifier = False
        elif c == "$" and dollar_at_end_only:
            out.append("\\Z")  # Python's '$' would also match before a trailing newline
            i += 1
            after_quantifier = False
        else:
            out.append(c)
            i += 1
            after_quantifier = False
    return "".join(out), flags


@functools.lru_cache(maxsize=4096)
def compile_match_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a model ``match_pattern`` (Postgres ARE, as used with ``name ~ pattern``) to Python ``re``.

    Use ``.search()`` on the result: ``~`` is an unanchored search. Raises ValueError for patterns Postgres
    would reject (or that use syntax we cannot translate faithfully), which the models API maps to 400.
    """
    if not isinstance(pattern, str):
        raise ValueError("pattern must be a string")
    try:
        translated, flags = _translate_are(pattern)
        return re.compile(translated, flags)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def compile_usage_pattern(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """Compile a tier condition's ``usageDetailPattern`` (a JavaScript-style regex, searched in usage keys)."""
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc


# --- Model matching -----------------------------------------------------------------------------------------
