"""What an import could not carry, and what a user should know about what it did.

A **dropped** item is part of the compose file the template does not hold (a key, a
value, or what a value meant): ``deployer import --check`` fails on any. A **note** is a
translation that holds but works differently (where a volume's data now lives, a
default written in). Both name the service and the compose key, so each reads as one
line: ``web.network_mode: dropped: deployer runs every container on ...``.
"""

import sys
from dataclasses import dataclass

from ..cli import output
from ..errors import printable


@dataclass(frozen=True)
class Dropped:
    service: str | None  # None: a top-level key
    key: str
    why: str

    def line(self):
        return f"{_where(self.service, self.key)}: dropped: {printable(self.why)}"


@dataclass(frozen=True)
class Note:
    service: str | None
    key: str
    note: str

    def line(self):
        return f"{_where(self.service, self.key)}: note: {printable(self.note)}"


def _where(service, key):
    return printable(".".join(part for part in (service, key) if part))


class Report:
    """Collects dropped items and notes, each once, in the order they were found."""

    def __init__(self):
        self.dropped = []
        self.notes = []

    def drop(self, service, key, why):
        item = Dropped(service, key, why)
        if item not in self.dropped:
            self.dropped.append(item)

    def note(self, service, key, note):
        item = Note(service, key, note)
        if item not in self.notes:
            self.notes.append(item)




def show(imported, as_json=False, check=False):
    """What ``deployer import`` prints: the template on stdout and notes and dropped items
    on stderr, one line each (``check``: the dropped items only); or one JSON document."""
    if as_json:
        output.document(imported.to_dict())
        return
    if not check:
        sys.stdout.write(imported.template)
        sys.stdout.flush()
    if not output.QUIET.is_set():
        for line in [d.line() for d in imported.dropped] if check else imported.report_lines():
            print(line, file=sys.stderr)
