"""Live: what a host reports while its scripts run, shown to people as it arrives.

Anything not a terminal (a pipe, a file, ``--json``) gets the same lines as ever from
output.py, once the task is done.
"""

import sys
import threading

from ..remote.framing import elapsed
from . import output


class Live:
    """A host's reports while its scripts run (the Host's listener), for people.

    - ``-v``: each command and file the host's scripts note, on stderr, secrets masked
      (``secrets`` reports the values to mask, before any script could use them);
    - waits (another deploy's lock, a container's health): on a terminal one line that
      counts the seconds, else one line when the wait begins; a pull, on a terminal, as it begins;
    - a deploy's rows (``apply`` with the plan, then ``ok`` per step done): on a terminal
      each row as its step is done, in colour; elsewhere ``deployed`` prints the table at
      the end, as before, so scripts and logs see no difference;
    - a release command's output (``release``), each line on stderr as it comes, as a
      build's (``web release | ...``).
    """

    def __init__(self, host, verbose=False, rows=True):
        self.host = host
        self.verbose = verbose
        alone = output.stream() is sys.stdout  # not one of several hosts, whose output is kept together
        self.live_rows = rows and alone and sys.stdout.isatty() and not output.QUIET.is_set()
        self.counting = alone and sys.stderr.isatty()
        self.table = None  # (widths, actions) once the plan's rows are shown live
        self._waits = set()  # what has been waited for (shown once when not on a terminal)
        self._open = 0  # length of the counting line on a terminal, 0: none
        self._lock = threading.Lock()
        self._progress = output.build_progress()  # made here, in the task's thread: it knows the host
        self._handlers = {
            "secrets": self._conceal, "run": self._traced, "put": self._traced, "append": self._traced,
            "garbled": self._traced,
            "waiting": self._lock_wait, "health": self._health_wait, "pulling": self._pulling,
            "apply": self._planned, "ok": self._done,
            "applied": self._applied, "release": self._release_line,
        }

    def __call__(self, kind, *fields):
        with self._lock:
            if kind not in ("waiting", "health"):
                self._close()
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(kind, *fields)

    def _conceal(self, kind, *values):
        output.conceal(values)

    def _traced(self, kind, *fields):
        if self.verbose:
            print(f"{self.host}: {output.traced(kind, fields)}", file=sys.stderr, flush=True)

    def _lock_wait(self, kind, seconds, instance, *holder):
        self._wait(f"lock {instance}", f"waiting for the lock of instance {instance} (held by {' '.join(holder)})", seconds)

    def _health_wait(self, kind, container, seconds):
        self._wait(f"health {container}", f"waiting for {container} to be healthy", seconds)

    def _pulling(self, kind, image):
        """A pull (``--pull``) may take a while: a terminal is told as it begins."""
        if self.counting and not output.QUIET.is_set():
            print(output.masked(f"{self.host}: pulling {image}"), file=sys.stderr, flush=True)

    def _wait(self, key, text, seconds):
        """On a terminal, one line rewritten each second; elsewhere the first line only."""
        if output.QUIET.is_set():
            return
        line = f"{self.host}: {text}"
        if self.counting:
            line += f" {seconds} s"
            print("\r" + line.ljust(self._open), end="", file=sys.stderr, flush=True)
            self._open = len(line)
        elif key not in self._waits:
            print(line, file=sys.stderr, flush=True)
        self._waits.add(key)

    def _close(self):
        if self._open:
            print(file=sys.stderr, flush=True)
            self._open = 0

    def _release_line(self, kind, service, line):
        self._progress(f"{service} release", line)

    def _planned(self, kind, actions):
        """The header and the kept services at once; the other rows as their steps are done."""
        if not self.live_rows:
            return
        widths = output.widths(output.DEPLOY_COLUMNS, [output.step_row(a, None) for a in actions])
        self.table = (widths, {a.service: a for a in actions})
        output.emit(output.row_line(output.DEPLOY_COLUMNS, widths))
        for a in actions:
            if a.kind == "keep":
                output.emit(output.row_line(output.step_row(a, None), widths), "kept")

    def _done(self, kind, service, *stamps):
        if self.table:
            widths, actions = self.table
            output.emit(output.row_line(output.step_row(actions[service], elapsed(*stamps)), widths), "done")

    def _applied(self, kind, *done):
        """Steps not done: the deploy stopped there (its error follows)."""
        if self.table:
            widths, actions = self.table
            for a in actions.values():
                if a.kind != "keep" and a.service not in done:
                    output.emit(output.row_line((*output.step_row(a, None)[:3], "failed"), widths), "failed")
