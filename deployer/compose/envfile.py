"""The env file format compose reads (``env_file:`` and the project's ``.env``).

One ``NAME=value`` per line; ``#`` lines and blank lines are skipped, ``export`` before
a name is allowed. A value is unquoted (up to the line's end or a `` #`` comment),
``'single-quoted'`` (taken literally, ``\\'`` an escaped quote) or ``"double-quoted"``
(``\\n``, ``\\r``, ``\\t``, ``\\\\`` and ``\\"`` escapes); quoted values may span lines.
A name without ``=`` sets nothing, as compose says. Unquoted and double-quoted values
are interpolated by compose, single-quoted ones not: each entry says which.
"""

import re
from dataclasses import dataclass

from ..errors import TemplateError

_NAME = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    interpolated: bool  # False: single-quoted, taken as written
    line: int


def parse(text, path):
    """The entries of an env file's text, in order; a malformed line is a TemplateError
    naming the file and the line."""
    entries, at, lines = [], 0, text.splitlines(keepends=True)
    while at < len(lines):
        line = lines[at].strip()
        if not line or line.startswith("#"):
            at += 1
            continue
        match = _NAME.match(lines[at])
        rest = lines[at][match.end():] if match else ""
        if not match or not (rest.startswith("=") or not rest.strip()):
            raise TemplateError(f"line {at + 1}: expected NAME=value", file=path)
        if not rest.strip():
            at += 1  # a name alone: unset
            continue
        value, quoted, used = _value(lines, at, rest[1:], path)
        entries.append(Entry(match.group(1), value, quoted != "'", at + 1))
        at += used
    return entries


def _value(lines, at, rest, path):
    """(value, its quote or '', how many lines it took) for the text after ``=``."""
    stripped = rest.lstrip(" \t")
    if not stripped[:1] in ("'", '"'):
        return _unquoted(rest), "", 1
    quote, text, used = stripped[0], stripped[1:], 1
    while True:
        end = _closing(text, quote)
        if end is not None:
            tail = text[end + 1:].strip()
            if tail and not tail.startswith("#"):
                raise TemplateError(f"line {at + 1}: text after the closing quote: {tail!r}", file=path)
            return _unescape(text[:end], quote), quote, used
        if at + used >= len(lines):
            raise TemplateError(f"line {at + 1}: the {quote} quote is never closed", file=path)
        text += lines[at + used]
        used += 1


def _unquoted(rest):
    value = rest.rstrip("\r\n")
    comment = re.search(r"[ \t]#", value)
    return (value[:comment.start()] if comment else value).strip(" \t")


def _closing(text, quote):
    """The index of the quote that closes ``text`` (a backslash escapes one), or None."""
    at = 0
    while at < len(text):
        if text[at] == "\\":
            at += 2
        elif text[at] == quote:
            return at
        else:
            at += 1
    return None


def _unescape(text, quote):
    if quote == "'":
        return text.replace("\\'", "'")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text, flags=re.S)
