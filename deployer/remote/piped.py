"""Piped stdin: the bytes a user pipes into ``run`` or ``exec`` reach the command.

``echo 'select 42;' | deployer exec db -- psql`` and ``deployer exec db -- psql < dump.sql``
must work as ``docker exec -i`` does. A pipe or a regular file is such input; a terminal is
not (it gets a TTY instead), nor are ``/dev/null`` or a closed descriptor, CI's stdin, which
no command should wait on.

The command runs through Fabric's (or invoke's) ``run()``, whose own stdin handling suits a
person typing: it reads a stream that is no terminal one byte at a time, sleeping 10 ms in
between (100 bytes a second: a dump would take hours), and decodes it as text (a binary
stream would not survive). ``PipedStdin`` replaces those two hooks of the runner: the bytes
go on as they come, 64 KiB at a time, untouched, and their end closes the command's stdin.
"""

import os
import select
import stat
from contextlib import contextmanager

CHUNK = 65536


def piped(stream):
    """Whether ``stream`` is a pipe or a regular file: input for a command."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # closed, or no descriptor at all
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


class PipedStdin:
    """A runner's stdin hooks for piped input (mixed into Fabric's Remote or invoke's Local)."""

    stopped_reading = False

    def read_our_stdin(self, input_):
        """What has arrived (bytes; ``b""`` at the end), or None when nothing has yet."""
        fd = input_.fileno()
        if not select.select([fd], [], [], 0)[0]:
            return None
        return os.read(fd, CHUNK)

    def write_proc_stdin(self, data):
        """The bytes, as they are. A command that stopped reading (it ended) gets no more,
        and that is no error, as for any pipe's writer."""
        if self.stopped_reading:
            return
        try:
            self._write_proc_stdin(data)
        except (OSError, EOFError):
            self.stopped_reading = True

    def close_proc_stdin(self):
        try:
            super().close_proc_stdin()
        except (OSError, EOFError):
            pass


@contextmanager
def piping(context):
    """Within the block, ``context.run()`` hands piped stdin on with PipedStdin (its
    runner classes, local and remote, are the configured ones with the hooks mixed in)."""
    runners = context.config.runners
    saved = {kind: runners[kind] for kind in ("local", "remote") if kind in runners}
    for kind, runner in saved.items():
        runners[kind] = type(f"Piped{runner.__name__}", (PipedStdin, runner), {})
    try:
        yield
    finally:
        for kind, runner in saved.items():
            runners[kind] = runner
