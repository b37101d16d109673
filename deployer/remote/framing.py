"""The framing of host scripts: how a script running on a host reports back.

A script reports in ``mark`` lines on stdout and ``note`` records on stderr, both starting
with the script's boundary, random per script (``boundary()``), so no content can forge
one. ``sections()`` splits a finished script's stdout at its marks; a Watch hears each
mark and note as it arrives, as ``(kind, *fields)``, and ``end EXIT`` when the script is
done. A note's fields end with NUL, which no shell value can hold, so any value (newlines
too) arrives intact, and a command's own output cannot forge one (it does not know the
boundary); see Notes for output that cuts into one.
"""

import secrets
from dataclasses import dataclass
from typing import Callable


def boundary():
    return "@@deployer-" + secrets.token_hex(8)


def elapsed(start=None, end=None):
    """Seconds between two ``date +%s.%N`` stamps (None where the host's date has no %N)."""
    try:
        return round(float(end) - float(start), 2)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Watch:
    """Who hears a script's marks and notes as they arrive: ``report(kind, *fields)``;
    and ``text(line)``, if given, each line of its other stderr (a build's output)."""

    boundary: str
    report: Callable
    text: Callable | None = None


class Notes:
    """Split a script's stderr into plain text and ``note`` records.

    A record is ``BOUNDARY KIND N LENGTH...\\0`` then N fields, each ending with NUL. Data
    comes in chunks cut anywhere; ``feed`` returns the records completed so far (tuples of
    str), ``text`` is the rest: what error messages are made of, and ``lines`` gives it
    line by line as it comes (a build's output).

    A long record takes several writes, and another process writing to the same stderr
    (a docker error of a service started at the same time) may land between two: the
    NULs still say where the record ends, and the lengths that it was cut. Such a record
    is ``("garbled", KIND)``, never shown, so no value is shown in pieces that masking
    could miss. (A shell counts bytes, or characters in a UTF-8 locale: both are fine.)
    """

    def __init__(self, boundary):
        self._tag = (boundary + " ").encode()
        self._pending = b""  # not yet known to be text or a record
        self._text = []
        self._line = b""  # text after the last line given by lines()

    def feed(self, data):
        self._pending += data
        records = []
        while (at := self._pending.find(self._tag)) >= 0:
            self._keep(self._pending[:at])
            self._pending = self._pending[at:]
            parts = self._pending[len(self._tag) :].split(b"\0")
            if len(parts) == 1:
                return records  # the header is still arriving
            header = _header(parts[0])
            if header is None:
                self._keep(self._tag)  # the tag, then no record: text
                self._pending = self._pending[len(self._tag) :]
                continue
            kind, lengths = header
            if len(parts) < len(lengths) + 2:
                return records
            records.append(_record(kind, parts[1 : len(lengths) + 1], lengths))
            self._pending = b"\0".join(parts[len(lengths) + 1 :])
        cut = len(self._pending) - _tag_start(self._pending, self._tag)  # keep only what may start a tag
        self._keep(self._pending[:cut])
        self._pending = self._pending[cut:]
        return records

    def _keep(self, text):
        self._text.append(text)
        self._line += text

    def lines(self):
        """The text's lines completed since the last call."""
        *complete, self._line = self._line.split(b"\n")
        return [line.decode(errors="replace") for line in complete]

    def close(self):
        """The end of stderr: what was held back is text. The text's last lines."""
        self._keep(self._pending)
        self._pending = b""
        last = self.lines() + ([self._line.decode(errors="replace")] if self._line else [])
        self._line = b""
        return last

    @property
    def text(self):
        return b"".join(self._text + [self._pending]).decode(errors="replace")


def _tag_start(data, tag):
    """How many of data's last bytes could be the start of a tag (held back until it is
    known; anything else is text at once, so a build's line shows as soon as it is written)."""
    return next((n for n in range(min(len(tag) - 1, len(data)), 0, -1) if data.endswith(tag[:n])), 0)


def _header(raw):
    """``KIND N LENGTH...`` -> (kind, [N lengths]); None if it is not a record's header."""
    words = raw.decode(errors="replace").split(" ")
    if len(words) < 2 or not all(w.isdigit() for w in words[1:]) or int(words[1]) != len(words) - 2:
        return None
    return words[0], [int(w) for w in words[2:]]


def _record(kind, fields, lengths):
    """A note's ``(kind, *fields)``, or ``("garbled", kind)`` if a field is not as long as
    its header said (other output landed inside the record)."""
    values = [field.decode(errors="replace") for field in fields]
    if all(n in (len(f), len(v)) for n, f, v in zip(lengths, fields, values)):
        return (kind, *values)
    return ("garbled", kind)


def sections(stdout, boundary):
    """Split script output at boundary lines: ``{name: text}``, plus ``ok`` marks in order.

    A boundary may follow text on its line (a file without a final newline was printed)."""
    found, marks, name, lines = {}, [], None, []
    for line in stdout.splitlines(keepends=True):
        at = line.find(boundary + " ")
        if at >= 0:
            if name is not None:
                found[name] = "".join(lines + [line[:at]])
            name, lines = line[at + len(boundary) + 1 :].rstrip("\n"), []
            if name.startswith("ok "):
                marks.append(name[3:])
                name = None
        elif name is not None:
            lines.append(line)
    if name is not None:
        found[name] = "".join(lines)
    found["_marks"] = marks
    return found


def marked(stdout, boundary, kind):
    """The fields of each ``kind`` mark in a script's stdout, in order."""
    tag = f"{boundary} {kind} "
    return [line[line.find(tag) + len(tag):].split() for line in stdout.splitlines() if tag in line]
