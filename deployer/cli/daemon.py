"""The daemon: deployer kept loaded between commands, so a command costs no start-up.

A ``deployer`` command spends about 0.2 s starting Python and importing Fabric, invoke
and paramiko before it opens any connection: half of a no-op deploy. So the ``deployer``
command is a thin client (client.py). It hands its arguments, environment, working
directory and its stdin, stdout and stderr themselves (the file descriptors, over a Unix
socket) to a daemon that has everything imported, and exits as the command does. The
daemon forks a child per command, which runs the command exactly as the command would run
alone: its terminal is the user's (colour, live rows, ptys), its settings files and
environment are the command's, its umask and ignored signals the client's. The child
leads a process group of its own: what the client receives (Ctrl-C, SIGTERM, SIGHUP,
SIGQUIT, window size changes) goes to that group, the command and every process it
started (``docker``, ``git``), as the terminal sends it to the client's group without a
daemon; it stops and goes on with the client (Ctrl-Z, fg); when the client dies (SIGKILL)
the child is killed too. So the daemon changes how long a command takes, nothing else.

It serves its own user only: a connection whose peer (``SO_PEERCRED``) is another user is
closed unheard. A command whose process would differ from the daemon's in what it
inherits and a fork cannot take over (user and group ids, supplementary groups, resource
limits, scheduling priority, cgroup, namespaces: client.inherited) is declined, and runs
in its own process; such a process has a daemon of its own (the socket's name covers
them). A client that connects and says nothing, or stops reading, never stalls another's
command: requests are read as they arrive, each within 10 seconds, and nothing the daemon
writes waits for a client.

No daemon yet (or one loaded from code that changed since): the command runs in its own
process as before and starts a daemon in the background for the next one. A daemon ends
after ``DEPLOYER_DAEMON`` seconds without a command (default 600); ``DEPLOYER_DAEMON=0``
runs every command in its own process and starts none. This is an environment variable,
not a setting: it is read before the settings, whose loading is the cost avoided. One
daemon per Python, module search path and inherited facts, with its socket in a directory
only the user can enter (``$XDG_RUNTIME_DIR/deployer``, else ``/tmp/deployer-UID``).
Commands that ask for a password (``--prompt-for-*``) run in their own process: only that
process can read the terminal without echo. ``fab`` does not use the daemon.
"""

import contextlib
import fcntl
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

from .client import FORWARDED, HEADER, inherited

REQUEST_TIMEOUT = 10  # seconds a client has to send its whole request
_CREDENTIALS = struct.Struct("3i")  # SO_PEERCRED: pid, uid, gid


class Daemon:
    """Accepts commands on the socket; forks a child per command; tells each client how
    its command ended. Only this process owns the socket while it holds the lock."""

    def __init__(self, path, idle):
        self.path, self.idle = path, idle
        self.children = {}  # pid -> the client's connection
        self.requests = {}  # a connection still sending its request -> Request
        self.selector = selectors.DefaultSelector()

    def serve(self):
        lock = open(self.path + ".lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # another daemon serves this path
        importlib.import_module("deployer.cli.program")  # everything a command needs, loaded once
        with contextlib.suppress(Exception):  # a broken plugin: each command says so itself
            importlib.import_module("deployer.plugins").installed()

        self.directories = _package_dirs()
        self.files = _loaded_files(self.directories)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound = f"{self.path}.{os.getpid()}"  # in place once listening: no client is refused
        self.listener.bind(bound)
        self.listener.listen(64)
        os.rename(bound, self.path)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "child")
        self.closing = [self.listener.fileno(), wake_r, wake_w, lock.fileno()]
        try:
            while self._turn():
                pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            lock.close()  # before any client hears it ended: the next daemon may start

    def _turn(self):
        """One wait for something to happen; False once the daemon should end."""
        busy = self.children or self.requests
        deadline = min((r.deadline for r in self.requests.values()), default=None)
        wait = max(0.0, deadline - time.monotonic()) if deadline is not None else None if busy else self.idle
        events = self.selector.select(wait)
        if not events and not busy:
            return False
        for key, _ in events:
            if key.data == "accept":
                self._accept()
            elif key.data == "child":
                os.read(key.fd, 512)
                self._reap()
            elif isinstance(key.data, Request):
                if not self._read(key.data):
                    return False
            else:  # a client hung up (it sends nothing more) before its command ended: killed
                with contextlib.suppress(OSError):
                    os.kill(key.data, signal.SIGKILL)
                self.selector.unregister(key.fileobj)
        for request in [r for r in self.requests.values() if r.deadline <= time.monotonic()]:
            self._drop(request)  # too slow: it may connect again
        return True

    def _accept(self):
        """A new connection, if its peer is this daemon's own user; its request is read as
        it arrives, never waited for."""
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        _, uid, _ = _CREDENTIALS.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
        if uid != os.geteuid():
            conn.close()  # another user's: refused unheard
            return
        conn.setblocking(False)
        request = self.requests[conn] = Request(conn, time.monotonic() + REQUEST_TIMEOUT)
        self.selector.register(conn, selectors.EVENT_READ, request)

    def _read(self, request):
        """What has arrived of a request; the command started once it is whole. False when
        the code changed since the daemon loaded it."""
        try:
            whole = request.receive()
        except (OSError, ValueError):
            self._drop(request)
            return True
        if not whole:
            return True
        self.selector.unregister(request.conn)
        del self.requests[request.conn]
        if _loaded_files(self.directories) != self.files:
            request.close()
            return False  # its client learns it once the daemon has ended
        if request.body.get("inherited") != inherited():
            _send(request.conn, {"declined": "this process differs from the daemon's"})
            request.close()
            return True
        self._start(request)
        return True

    def _drop(self, request):
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(request.conn)
        self.requests.pop(request.conn, None)
        request.close()

    def _start(self, request):
        """Fork the command's child, the leader of a process group of its own."""
        conn, fds = request.conn, request.fds
        pid = os.fork()
        if pid == 0:  # none of the daemon's descriptors: only the command's
            others = [c.fileno() for c in [conn, *self.children.values(), *self.requests]]
            _child(request.body, fds, [*self.closing, self.selector.fileno(), *others])
        with contextlib.suppress(OSError):  # the child sets it too: whichever comes first
            os.setpgid(pid, pid)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        _send(conn, {"pid": pid})  # a client gone already: it reads as hung up, below
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def _reap(self):
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                ended = {"signal": os.WTERMSIG(status)}
            else:
                ended = {"exit": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(KeyError):  # not if its client had hung up
                self.selector.unregister(conn)
            _send(conn, ended)
            conn.close()


class Request:
    """A command's request as it arrives on a non-blocking connection: a header (the
    body's length) carrying the client's stdin, stdout and stderr, then a JSON body."""

    def __init__(self, conn, deadline):
        self.conn, self.deadline = conn, deadline
        self.fds, self.size, self.data = [], None, b""

    def receive(self):
        """Read what is there; True once the request is whole (ValueError: not a request)."""
        if self.size is None:
            head, fds, _, _ = socket.recv_fds(self.conn, HEADER.size, 3)
            self.fds = fds
            if len(head) != HEADER.size or len(fds) != 3:
                raise ValueError("not a request")
            (self.size,) = HEADER.unpack(head)
        while len(self.data) < self.size:
            try:
                chunk = self.conn.recv(self.size - len(self.data))
            except BlockingIOError:
                return False
            if not chunk:
                raise ValueError("cut short")
            self.data += chunk
        self.body = json.loads(self.data)
        return True

    def close(self):
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.conn.close()


def _send(conn, message):
    """One line to a client, never waiting for it: one that reads nothing stalls no one."""
    with contextlib.suppress(OSError):
        conn.send(json.dumps(message).encode() + b"\n", socket.MSG_DONTWAIT)


def _package_dirs():
    """The search path's directories that hold installed packages (site-packages): an
    install or removal there (a new plugin too) changes the directory."""
    def holds(directory):
        with contextlib.suppress(OSError):
            return any(name.endswith((".dist-info", ".egg-info")) for name in os.listdir(directory))
        return False

    return [directory for directory in sys.path if holds(directory)]


def _loaded_files(directories=()):
    """Each loaded module's file and the given directories, with their modification
    times: a change means reload."""
    files = {}
    for path in [*(getattr(module, "__file__", None) for module in list(sys.modules.values())), *directories]:
        if path:
            try:
                files[path] = os.stat(path).st_mtime_ns
            except OSError:
                files[path] = None
    return files


def _child(request, fds, closing):
    """The command, in the forked child: the client's process in all but pid (and group)."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTSTP, *FORWARDED):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for number in request.get("ignored", ()):
            signal.signal(number, signal.SIG_IGN)  # as the client's: e.g. nohup's SIGHUP
        for fd in closing:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.umask(request["umask"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv, sys.path[:] = request["argv"], request["path"]
        _standard_streams()
        from .program import main as command

        command()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _standard_streams():
    """New sys.stdin/stdout/stderr over the client's descriptors, buffered as Python
    buffers its own: line by line on a terminal (live rows), stderr always."""
    encoding = sys.stdout.encoding
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        errors = "backslashreplace" if name == "stderr" else "strict"
        lines = name == "stderr" or (mode == "w" and os.isatty(fd))
        stream = open(fd, mode, buffering=1 if lines else -1, encoding=encoding, errors=errors, closefd=False)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


if __name__ == "__main__":
    sys.path[:] = json.loads(os.environ.pop("DEPLOYER_DAEMON_PATH", "null")) or sys.path
    os.chdir("/")
    Daemon(sys.argv[1], float(sys.argv[2])).serve()
