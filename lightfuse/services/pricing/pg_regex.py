"""Postgres regular expressions (ARE) translated to RE2 syntax and run in linear time.

Model match patterns are Postgres regexes (Langfuse matches them with ``~``); translating them keeps price
tables portable between Langfuse and Lightfuse and works on SQLite. The translation targets RE2 (see
``safe_regex``), not Python ``re``: patterns are user input, matched on the ingestion writer thread, and a
backtracking engine lets one pattern stall every project. ARE features RE2 cannot run (back-references,
look-ahead/look-behind) raise ValueError, which the models API turns into a 400.

Semantics kept: embedded options (``(?i)``, ``(?n)``, ``(?x)``, ``(?q)``...), ``***=``/``***:``, anchors
(``$`` only at the very end outside newline-sensitive mode), POSIX classes (ASCII, the C locale), Unicode
``\\w``/``\\d`` as before, ``\\y``/``\\Y`` (ASCII word boundaries in RE2), and ``\\m``/``\\M``/``[[:<:]]``/
``[[:>:]]`` when they stand next to an atom that surely is a word character (e.g. ``\\mgpt\\M``): there a
plain boundary is exact; elsewhere they would need look-around and are refused.
"""

from __future__ import annotations

import functools
import re

from lightfuse.services.common.safe_regex import UserRegex, compile_user_regex

__all__ = ["compile_match_pattern", "compile_usage_pattern", "translate_are"]

_POSIX_CLASS_NAMES = frozenset(
    {
        "alnum",
        "alpha",
        "blank",
        "cntrl",
        "digit",
        "graph",
        "lower",
        "print",
        "punct",
        "space",
        "upper",
        "xdigit",
        "word",
    }
)
# Classes that only ever hold ASCII word characters (for the \m / \M rule).
_WORDY_CLASSES = frozenset({"alnum", "alpha", "digit", "lower", "upper", "xdigit", "word"})
# Escapes as RE2 text: outside brackets / inside brackets. \w and \d stay Unicode, as Python's were.
_CLASS_ESCAPES = {
    "d": ("\\p{Nd}", "\\p{Nd}"),
    "D": ("\\P{Nd}", "\\P{Nd}"),
    "s": ("[[:space:]]", "[:space:]"),  # RE2's \s lacks \v, Postgres' has it
    "S": ("[[:^space:]]", "[:^space:]"),
    "w": ("[\\p{L}\\p{N}_]", "\\p{L}\\p{N}_"),
    "W": ("[^\\p{L}\\p{N}_]", "\\W"),  # a negated set cannot nest in a bracket; ASCII there
}
_SAME_ESCAPES = {
    "A": "\\A",
    "Z": "\\z",
    "t": "\\t",
    "n": "\\n",
    "r": "\\r",
    "f": "\\f",
    "v": "\\v",
    "a": "\\a",
}
# ARE \b is a backspace (a word boundary elsewhere), \B a literal backslash, \e ESC.
_CHAR_ESCAPES = {"b": "\b", "B": "\\", "e": "\x1b"}
_DUPMAX = 255  # Postgres' upper limit for {m,n} bounds
# Embedded options are only legal at the very start of an ARE, e.g. the "(?i)" every built-in pattern uses.
_EMBEDDED_OPTIONS = re.compile(r"\(\?([A-Za-z]+)\)")
_HEX = "0123456789abcdefABCDEF"
_UNSUPPORTED = "is not supported (the regex engine runs in linear time and cannot evaluate it)"
_WORD_START, _WORD_END = "word start", "word end"  # markers for \m and \M


def _lit(ch: str) -> str:
    """One character as an RE2 literal, valid inside and outside brackets."""
    if _is_ascii_word(ch):
        return ch
    if ord(ch) > 0x7F and ch.isprintable() and not ch.isspace():
        return ch
    return f"\\x{{{ord(ch):X}}}"


def _is_ascii_word(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _read_escape(pattern: str, i: int, in_bracket: bool) -> tuple[str, int, bool]:
    """The escape at pattern[i] == '\\' as (RE2 text or a marker, next index, surely one ASCII word char)."""
    if i + 1 >= len(pattern):
        raise ValueError("invalid escape \\ sequence: pattern ends with a backslash")
    c = pattern[i + 1]
    j = i + 2
    if not c.isalnum():
        return _lit(c), j, c == "_"
    if c in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[c][1 if in_bracket else 0], j, False
    if c in _SAME_ESCAPES and not (in_bracket and c in "AZ"):
        return _SAME_ESCAPES[c], j, False
    if c in _CHAR_ESCAPES:
        return _lit(_CHAR_ESCAPES[c]), j, False
    if c == "c":
        if j >= len(pattern):
            raise ValueError("invalid escape \\c at end of pattern")
        return _lit(chr(ord(pattern[j]) & 0x1F)), j + 1, False
    if c in "uU":
        width = 4 if c == "u" else 8
        digits = pattern[j : j + width]
        if len(digits) != width or not all(ch in _HEX for ch in digits):
            raise ValueError(f"invalid escape \\{c} sequence")
        return _char_from_code(int(digits, 16)), j + width, False
    if c == "x":  # ARE takes any number of hex digits
        k = j
        while k < len(pattern) and pattern[k] in _HEX:
            k += 1
        if k == j:
            raise ValueError("invalid escape \\x sequence")
        return _char_from_code(int(pattern[j:k], 16)), k, False
    if c == "0":  # octal
        k = j
        while k < len(pattern) and k < j + 2 and pattern[k] in "01234567":
            k += 1
        return _lit(chr(int(pattern[i + 1 : k], 8))), k, False
    if not in_bracket:
        if c == "y":
            return "\\b", j, False
        if c == "Y":
            return "\\B", j, False
        if c == "m":
            return _WORD_START, j, False
        if c == "M":
            return _WORD_END, j, False
        if c.isdigit():
            raise ValueError(f"back-reference \\{c} {_UNSUPPORTED}")
    raise ValueError(f"invalid escape \\{c} sequence")


def _char_from_code(code: int) -> str:
    if code > 0x10FFFF:
        raise ValueError("invalid escape: code point out of range")
    return _lit(chr(code))


def _read_bracket(pattern: str, i: int, newline_sensitive: bool) -> tuple[str, int, bool]:
    """The bracket expression at pattern[i] == '[' as (RE2 text or a marker, next index, all word chars)."""
    n = len(pattern)
    # Postgres' special word-boundary brackets.
    if pattern.startswith("[[:<:]]", i):
        return _WORD_START, i + 7, False
    if pattern.startswith("[[:>:]]", i):
        return _WORD_END, i + 7, False
    j = i + 1
    negate = j < n and pattern[j] == "^"
    if negate:
        j += 1
    parts: list[str] = []
    wordy = not negate
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
                if name not in _POSIX_CLASS_NAMES:
                    raise ValueError(f"invalid character class [:{name}:]")
                parts.append(f"[:{name}:]")
                wordy = wordy and name in _WORDY_CLASSES
            elif len(name) == 1:  # [.x.] / [=x=]: only single-character elements exist in practice
                parts.append(_lit(name))
                wordy = wordy and _is_ascii_word(name)
            else:
                raise ValueError(f"invalid collating element [{kind}{name}{kind}]")
            continue
        lo_char: str | None = c
        if c == "\\":
            text, j, _ = _read_escape(pattern, j, in_bracket=True)
            lo_char = None
        else:
            text, j = _lit(c), j + 1
        # A '-' between two elements is a range operator; first/last '-' is literal.
        if j + 1 < n and pattern[j] == "-" and pattern[j + 1] != "]":
            hi = pattern[j + 1]
            hi_char: str | None = hi
            if hi == "\\":
                hi_text, j, _ = _read_escape(pattern, j + 1, in_bracket=True)
                hi_char = None
            elif hi == "[":
                raise ValueError("invalid range endpoint")
            else:
                hi_text, j = _lit(hi), j + 2
            text = f"{text}-{hi_text}"
            wordy = wordy and lo_char is not None and hi_char is not None and _word_range(lo_char, hi_char)
        else:
            wordy = wordy and lo_char is not None and _is_ascii_word(lo_char)
        parts.append(text)
    if negate and newline_sensitive:
        parts.append("\\n")  # newline-sensitive mode: a negated bracket never matches a newline
    return "[" + ("^" if negate else "") + "".join(parts) + "]", j, wordy


def _word_range(lo: str, hi: str) -> bool:
    return any(a <= lo <= hi <= b for a, b in (("0", "9"), ("A", "Z"), ("a", "z")))


def _read_bound(body: str, i: int) -> tuple[str, int, int]:
    """A ``{m}``/``{m,}``/``{m,n}`` bound at body[i] as (text, next index, lower bound)."""
    end = body.find("}", i)
    bound = body[i + 1 : end] if end > 0 else ""
    m = re.fullmatch(r"(\d+)(,(\d*))?", bound)
    if m is None:
        raise ValueError("invalid repetition count(s)")
    lo, hi = int(m.group(1)), (int(m.group(3)) if m.group(3) else None)
    if lo > _DUPMAX or (hi is not None and (hi > _DUPMAX or hi < lo)):
        raise ValueError("invalid repetition count(s)")
    return body[i : end + 1], end + 1, lo


def _options(body: str) -> tuple[str, bool, bool, bool, bool]:
    """Strip leading embedded options: (rest, ignore_case, newline_sensitive, expanded, literal)."""
    ignore_case = expanded = newline_sensitive = False
    leading = _EMBEDDED_OPTIONS.match(body)
    if leading is None:
        return body, False, False, False, False
    body = body[leading.end() :]
    for opt in leading.group(1):
        if opt in "ic":
            ignore_case = opt == "i"
        elif opt in "nms":  # n/m: newline-sensitive; s: Postgres' default
            newline_sensitive = opt != "s"
        elif opt in "xt":  # expanded / tight syntax
            expanded = opt == "x"
        elif opt == "q":  # the rest is a literal string
            return body, ignore_case, newline_sensitive, expanded, True
        else:
            # b/e (basic/extended syntax), p/w (partial newline modes): never seen in match patterns.
            raise ValueError(f"unsupported embedded option '{opt}'")
    return body, ignore_case, newline_sensitive, expanded, False


def translate_are(pattern: str) -> str:
    """Translate a Postgres advanced regular expression into an RE2 pattern (options inline)."""
    if pattern.startswith("***="):
        return "".join(_lit(c) for c in pattern[4:])
    body = pattern[4:] if pattern.startswith("***:") else pattern
    body, ignore_case, newline_sensitive, expanded, literal = _options(body)
    case = "i" if ignore_case else ""
    if literal:
        return f"(?{case})" * bool(case) + "".join(_lit(c) for c in body)
    # Default mode: '.' matches a newline and '$' only matches at the very end; newline-sensitive mode is
    # RE2's multi-line mode without dot-matches-newline.
    out: list[str] = ["(?m" + case + ")" if newline_sensitive else "(?s" + case + ")"]
    i, n = 0, len(body)
    can_quantify = (
        False  # the last item is an atom: quantifying an anchor, a constraint, '(' or '|' is invalid
    )
    prev_wordy = False  # the last atom surely consumed one ASCII word character (for \M)
    need_word_atom = False  # a \m waits for its atom
    check_start_quantifier = False  # the atom after \m may not be optional

    def word_constraint_error(which: str) -> ValueError:
        return ValueError(
            f"{which} {_UNSUPPORTED} here; it is only supported right next to a word character "
            "(e.g. \\mgpt\\M), use \\y for a plain word boundary"
        )

    while i < n:
        c = body[i]
        if expanded and c in " \t\n\r\f\v":
            i += 1
            continue
        if expanded and c == "#":
            end = body.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        is_quantifier = c in "*+?" or (c == "{" and i + 1 < n and body[i + 1].isdigit())
        if need_word_atom and is_quantifier:
            raise word_constraint_error("\\m")
        if is_quantifier:
            if not can_quantify:  # also stacked quantifiers, which Postgres rejects
                raise ValueError("quantifier operand invalid")
            if c == "{":
                text, i, lower = _read_bound(body, i)
            else:
                text, i, lower = c, i + 1, (1 if c == "+" else 0)
            out.append(text)
            if i < n and body[i] == "?":  # non-greedy marker belongs to this quantifier
                out.append("?")
                i += 1
            if lower == 0:
                if check_start_quantifier:
                    raise word_constraint_error("\\m")
                prev_wordy = False
            can_quantify = False
            check_start_quantifier = False
            continue
        check_start_quantifier = False
        wordy = False
        if c == "\\":
            text, i, wordy = _read_escape(body, i, in_bracket=False)
        elif c == "[":
            text, i, wordy = _read_bracket(body, i, newline_sensitive)
        elif c == "(":
            if body.startswith("(?#", i):  # comment
                end = body.find(")", i)
                if end < 0:
                    raise ValueError("unterminated comment")
                i = end + 1
                continue
            if any(body.startswith(p, i) for p in ("(?=", "(?!", "(?<=", "(?<!")):
                raise ValueError(f"look-ahead/look-behind constraint {_UNSUPPORTED}")
            if body.startswith("(?:", i):
                text, i = "(?:", i + 3
            elif body.startswith("(?", i):
                raise ValueError("invalid (? construct (only (?: (?= (?! (?<= (?<! are allowed)")
            else:
                text, i = "(", i + 1
        elif c == "{":  # '{' not starting a bound is an ordinary character in ARE
            text, i = _lit(c), i + 1
        elif c == "$" and not newline_sensitive:
            text, i = "\\z", i + 1
        elif c in ".^$|)":
            text, i = c, i + 1
        else:
            text, i, wordy = _lit(c), i + 1, _is_ascii_word(c)
        can_quantify = text not in (
            "(",
            "(?:",
            "|",
            "^",
            "$",
            "\\z",
            "\\A",
            "\\b",
            "\\B",
            _WORD_START,
            _WORD_END,
        )
        if text == _WORD_START:
            if need_word_atom:
                raise word_constraint_error("\\m")
            need_word_atom = True
            out.append("\\b")  # exact once the next atom is known to be a word character
            prev_wordy = False
            continue
        if text == _WORD_END:
            if not prev_wordy:
                raise word_constraint_error("\\M")
            out.append("\\b")
            continue
        if need_word_atom:
            if not wordy:
                raise word_constraint_error("\\m")
            need_word_atom = False
            check_start_quantifier = True
        out.append(text)
        prev_wordy = wordy
    if need_word_atom:
        raise word_constraint_error("\\m")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_match_pattern(pattern: str) -> UserRegex:
    """Compile a model ``match_pattern`` (Postgres ARE, as used with ``name ~ pattern``) for RE2.

    Use ``.search()`` on the result: ``~`` is an unanchored search. Raises ValueError for patterns Postgres
    would reject, or that RE2 cannot run, which the models API maps to 400.
    """
    if not isinstance(pattern, str):
        raise ValueError("pattern must be a string")
    try:
        translated = translate_are(pattern)
    except (OverflowError, RecursionError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return compile_user_regex(translated)


@functools.lru_cache(maxsize=1024)
def compile_usage_pattern(pattern: str, case_sensitive: bool = False) -> UserRegex:
    """Compile a tier condition's ``usageDetailPattern`` (a JavaScript-style regex, searched in usage keys).

    RE2 reads the common JavaScript syntax alike; look-around and back-references raise ValueError.
    """
    return compile_user_regex(pattern, case_sensitive=case_sensitive)
