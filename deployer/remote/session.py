"""Sessions: one ``sh -s`` running on a host, fed a script, with stdin kept open.

Keeping stdin open turns one remote process into a conversation: a deploy sends a
script that takes the instance's lock and reports the facts, reads them, then sends the
plan to the same process. The lock is the process's: it is released when the process
ends, and the process ends when the client closes stdin, dies, or loses the connection.

Two runners start sessions: SSHRunner on a Fabric Connection's own transport (a raw
paramiko channel: invoke's in_stream reads byte by byte), LocalRunner with the local
``sh`` (no ``-H``: the local Docker engine).

A script also reports while it runs, for whoever watches (progress, ``-v``): ``mark``
lines on stdout and ``note`` records on stderr, both starting with the script's random
boundary. A Watch hears each as it arrives, as ``(kind, *fields)``, and ``end EXIT`` when
the script is done: stdout is read line by line, stderr as it comes, and what is neither
stays the session's result. A note's fields end with NUL, which no shell value can
hold, so any value (newlines too) arrives intact, and a command's own output cannot
forge one (it does not know the boundary); see Notes for output that cuts into one. Build output, or anything else a script
wants seen before it ends, can travel the same way.
"""

import logging
import os
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import paramiko

from ..errors import DeployerError, UnreachableError

CONNECT_TIMEOUT = 10  # seconds, unless -t / timeouts.connect says otherwise: a host that drops packets

# paramiko logs a failed handshake with a traceback through logging's last resort: our
# own one-line error says it better.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Result:
    exited: int
    stdout: str  # what read_until() did not consume
    stderr: str


def flag(settings, name):
    """A yes/no setting: fabric.yaml gives a bool, an env var (FABRIC_DEPLOYER_...) a string."""
    return str(settings.get(name)).lower() in ("1", "true", "yes")


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


class Session:
    """A running remote script; stderr is drained on a thread so it never stalls stdout.

    ``stderr`` is a function returning what has arrived (up to n bytes; b"" at the end),
    so notes are heard as they come, not when the script ends.
    """

    def __init__(self, host, write, close_stdin, stdout, stderr, wait, watch):
        self.host = host
        self._write, self._close_stdin, self._stdout, self._wait = write, close_stdin, stdout, wait
        self._watch = watch
        self._notes = Notes(watch.boundary)
        self._drain = threading.Thread(target=self._drain_stderr, args=(stderr,), daemon=True)
        self._drain.start()

    def _drain_stderr(self, read):
        for chunk in iter(lambda: read(65536), b""):
            for record in self._notes.feed(chunk):
                self._watch.report(*record)
            self._show(self._notes.lines())
        self._show(self._notes.close())

    def _show(self, lines):
        if self._watch.text is not None:
            for line in lines:
                self._watch.text(line)

    def send(self, data):
        """Text (a script) or bytes (a build context), sent as it is."""
        with self._io():
            self._write(data.encode() if isinstance(data, str) else data)

    def read_until(self, line):
        """Stdout up to the given line (consumed, not returned); None if the script ended first."""
        lines = []
        with self._io():
            for text in self._lines():
                if text.rstrip("\n") == line:
                    return "".join(lines)
                lines.append(text)
        return None

    def finish(self):
        """Close stdin, wait for the script to end, return what it printed since."""
        with self._io():
            self._close_stdin()
            stdout = "".join(self._lines())
            self._drain.join()
            exited = self._wait()
        self._watch.report("end", str(exited))
        return Result(exited, stdout, self._notes.text)

    def _lines(self):
        """Stdout's lines as they arrive, each mark also reported to the watch."""
        for raw in iter(self._stdout.readline, b""):
            text = raw.decode(errors="replace")
            at = text.find(self._watch.boundary + " ")
            if at >= 0:
                self._watch.report(*text[at + len(self._watch.boundary) + 1 :].split())
            yield text

    @contextmanager
    def _io(self):
        try:
            yield
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise DeployerError(f"SSH connection failed: {e or type(e).__name__}", host=self.host) from None


class LocalRunner:
    name = "local"

    def start(self, script, watch):
        proc = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def write(data):
            proc.stdin.write(data)
            proc.stdin.flush()

        session = Session(self.name, write, proc.stdin.close, proc.stdout, proc.stderr.read1, proc.wait, watch)
        session.send(script)
        return session


class SSHRunner:
    """Sessions over a Fabric Connection, checking the host's key against known_hosts.

    Fabric accepts any host key; a deploy tool must not. Keys come from the user's
    known_hosts (and ``deployer.known_hosts``, a file); an unknown key is refused unless
    ``deployer.accept_new_hosts`` is set (first contact, throwaway test hosts).
    """

    def __init__(self, connection, settings):
        self.connection = connection
        self.settings = settings
        self.name = f"{connection.user}@{connection.host}:{connection.port}"

    def start(self, script, watch):
        try:
            channel = self._transport().open_session()
            channel.exec_command("sh -s")
        except (paramiko.SSHException, OSError) as e:
            raise DeployerError(f"SSH connection failed: {e or type(e).__name__}", host=self.name) from None
        session = Session(
            self.name,
            channel.sendall,
            channel.shutdown_write,
            channel.makefile("rb"),
            channel.recv_stderr,
            channel.recv_exit_status,
            watch,
        )
        session.send(script)
        return session

    def _transport(self):
        client = self.connection.client
        if not self.connection.is_connected:
            if self.connection.connect_timeout is None and "timeout" not in self.connection.connect_kwargs:
                self.connection.connect_timeout = CONNECT_TIMEOUT
            client.load_system_host_keys()
            if not flag(self.settings, "accept_new_hosts"):
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            if self.settings.get("known_hosts"):
                client.load_host_keys(os.path.expanduser(self.settings["known_hosts"]))
        try:
            self.connection.open()
        except paramiko.BadHostKeyException as e:
            raise UnreachableError(f"host key mismatch ({e}): refused", host=self.name) from None
        except paramiko.SSHException as e:
            hint = ""
            if "not found in known_hosts" in str(e):
                hint = (": add its key to known_hosts (ssh-keyscan), or set deployer.accept_new_hosts "
                        "for a first contact")
            raise UnreachableError(f"cannot connect: {e}{hint}", host=self.name) from None
        except (OSError, EOFError) as e:
            raise UnreachableError(f"cannot connect: {e or type(e).__name__}", host=self.name) from None
        return client.get_transport()
