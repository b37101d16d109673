"""Sessions: one ``sh -s`` running on a host, fed a script, with stdin kept open.

Keeping stdin open turns one remote process into a conversation: a deploy sends a
script that takes the instance's lock and reports the facts, reads them, then sends the
plan to the same process. The lock is the process's: it is released when the process
ends, and the process ends when the client closes stdin, dies, or loses the connection.

Two runners start sessions: SSHRunner on a Fabric Connection's own transport (a raw
paramiko channel: invoke's in_stream reads byte by byte), LocalRunner with the local
``sh`` (no ``-H``: the local Docker engine).

While the script runs, its stdout is read line by line and its stderr as it comes, and
whoever watches (progress, ``-v``) hears its marks and notes as they arrive (framing.py);
what is neither stays the session's result. Build output, or anything else a script
wants seen before it ends, travels the same way.
"""

import logging
import os
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import paramiko

from ..errors import DeployerError, UnreachableError
from .framing import Notes

CONNECT_TIMEOUT = 10  # seconds, unless -t / timeouts.connect says otherwise: a host that drops packets

# paramiko logs a failed handshake with a traceback through logging's last resort: our
# own one-line error says it better.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Result:
    exited: int
    stdout: str  # what read_until() did not consume
    stderr: str


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
        found = self._read_to(lambda text: text == line)
        return found and found[0]

    def read_mark(self, kind):
        """Stdout up to the script's next ``kind`` mark, and the mark's fields; None if the
        script ended first."""
        tag = f"{self._watch.boundary} {kind}"
        found = self._read_to(lambda text: text == tag or text.startswith(tag + " "))
        return found and (found[0], found[1][len(tag):].split())

    def _read_to(self, matches):
        """(stdout before the first line that ``matches``, that line), or None."""
        lines = []
        with self._io():
            for text in self._lines():
                if matches(text.rstrip("\n")):
                    return "".join(lines), text.rstrip("\n")
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
    """Sessions of the local ``sh`` (no ``-H``), in a session of their own, as a host's
    script is on its host: Ctrl-C reaches the client alone (the terminal's process group),
    so a deploy whose plan is being applied runs to its end, as over SSH."""

    name = "local"

    def start(self, script, watch):
        proc = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

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
            if not self.settings.accept_new_hosts:
                client.set_missing_host_key_policy(paramiko.RejectPolicy())
            if self.settings.known_hosts:
                client.load_host_keys(os.path.expanduser(self.settings.known_hosts))
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
