"""The daemon: deployer kept loaded between commands, so a command costs no start-up.

A ``deployer`` command spends about 0.2 s starting Python and importing Fabric, invoke
and paramiko before it opens any connection: half of a no-op deploy. So the ``deployer``
command is a thin client. It hands its arguments, environment, working directory and its
stdin, stdout and stderr themselves (the file descriptors, over a Unix socket) to a
daemon that has everything imported, and exits as the command does. The daemon forks a
child per command, which runs the command exactly as the command would run alone: its
terminal is the user's (colour, live rows, ptys), its settings files and environment are
the command's. What the client receives (Ctrl-C, SIGTERM, SIGHUP, window size changes) the
child receives; it stops and goes on with the client (Ctrl-Z, fg); when the client dies
(SIGKILL) the child is killed too. So the daemon changes how long a command takes, nothing
else.

No daemon yet (or one loaded from code that changed since): the command runs in its own
process as before and starts a daemon in the background for the next one. A daemon ends
after ``DEPLOYER_DAEMON`` seconds without a command (default 600); ``DEPLOYER_DAEMON=0``
runs every command in its own process and starts none. This is an environment variable,
not a setting: it is read before the settings, whose loading is the cost avoided. One
daemon per Python and module search path, with its socket in a directory only the user
can enter (``$XDG_RUNTIME_DIR/deployer``, else ``/tmp/deployer-UID``). Commands that ask
for a password (``--prompt-for-*``) run in their own process: only that process can
read the terminal without echo. ``fab`` does not use the daemon.
"""

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys

IDLE = 600  # seconds a daemon waits for a command before it ends
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH)
PROMPTS = ("--prompt-for-login-password", "--prompt-for-passphrase", "--prompt-for-sudo-password")
_HEADER = struct.Struct("!I")


def main():
    """The ``deployer`` command: through the daemon when there is one."""
    idle = _idle()
    path = socket_path() if idle and _supported() and not any(a.startswith(PROMPTS) for a in sys.argv) else None
    if path is not None:
        code = _through(path)
        if code is not None:
            sys.exit(code)
        _spawn(path, idle)
    from .program import main as in_process

    in_process()


def _idle():
    """DEPLOYER_DAEMON's seconds (0: no daemon); anything else is exit 2 naming it."""
    value = os.environ.get("DEPLOYER_DAEMON", "").strip()
    try:
        seconds = float(value) if value else IDLE
    except ValueError:
        seconds = -1
    if not 0 <= seconds < float("inf"):
        print(f"error: DEPLOYER_DAEMON (environment): {value!r} is not a number of seconds (0: no daemon)",
              file=sys.stderr)
        sys.exit(2)
    return seconds


def _supported():
    return hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds") and hasattr(os, "fork")


def socket_path():
    """This Python's and search path's daemon socket (None: no private directory for it)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    directory = os.path.join(base, "deployer" if "XDG_RUNTIME_DIR" in os.environ else f"deployer-{os.getuid()}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
        key = json.dumps([sys.executable, _search_path(), os.path.dirname(os.path.abspath(__file__))])
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(directory):
        return None  # someone else's, or open to others: never trust it
    return os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:16] + ".sock")


def _search_path():
    """sys.path, with the working directory (``python -m`` puts it first) as a placeholder:
    one daemon serves a ``python -m deployer`` in any directory."""
    return ["." if sys.path[:1] == [os.getcwd()] else sys.path[0], *sys.path[1:]]


# -- the client -----------------------------------------------------------------------


def _through(path):
    """Run this command in the daemon; its exit code (None: no daemon took it)."""
    child = []  # the command's pid, once the daemon says it
    pending = []  # signals received before that

    def forward(number, frame):
        if not child:
            pending.append(number)
            return
        try:
            os.kill(child[0], number)
        except OSError:
            pass  # it has just ended

    def suspend(number, frame):
        """Ctrl-Z: the command stops with its client, and goes on with it (fg, bg). SIGSTOP,
        since the daemon's children, in a group with no terminal, would discard SIGTSTP."""
        forward(signal.SIGSTOP, frame)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until SIGCONT
        signal.signal(signal.SIGTSTP, suspend)
        forward(signal.SIGCONT, frame)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handlers = {number: signal.signal(number, forward) for number in FORWARDED}
    handlers[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, suspend)
    try:
        conn.connect(path)
        request = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "path": sys.path, "umask": _umask()}
        data = json.dumps(request).encode()
        socket.send_fds(conn, [_HEADER.pack(len(data))], [0, 1, 2])
        conn.sendall(data)
        reader = conn.makefile("rb")
        started = json.loads(reader.readline() or "{}")
    except (OSError, ValueError):
        started = {}
    if "pid" not in started:  # no daemon, or one loaded from code that changed since: it ends
        conn.close()
        for number, handler in handlers.items():
            signal.signal(number, handler)
        for number in pending:
            os.kill(os.getpid(), number)
        return None
    child.append(started["pid"])
    for number in pending:
        forward(number, None)
    try:
        ended = json.loads(reader.readline() or "{}")
    except ValueError:
        ended = {}
    if "signal" in ended:  # end as the command did: killed by that signal
        signal.signal(ended["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), ended["signal"])
    if "exit" not in ended:
        print("error: the deployer daemon went away: how the command ended is unknown (`status` shows the hosts)",
              file=sys.stderr)
        return 1
    return ended["exit"]


def _umask():
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _spawn(path, idle):
    """Start a daemon in the background, loaded from what this command loads, with only
    the environment Python's imports read (each command brings its own: no secret of this
    one stays in the daemon)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG") or k.startswith(("PYTHON", "LC_"))}
    env["DEPLOYER_DAEMON_PATH"] = json.dumps(sys.path)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "deployer.cli.daemon", path, str(idle)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True,
        )
    except OSError:
        pass  # no daemon: this command and the next run on their own


# -- the daemon -----------------------------------------------------------------------


class Daemon:
    """Accepts commands on the socket; forks a child per command; tells each client how
    its command ended. Only this process owns the socket while it holds the lock."""

    def __init__(self, path, idle):
        self.path, self.idle = path, idle
        self.children = {}  # pid -> the client's connection
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
        events = self.selector.select(None if self.children else self.idle)
        if not events and not self.children:
            return False
        for key, _ in events:
            if key.data == "accept":
                conn, _ = self.listener.accept()
                if not self._start(conn):
                    return False
            elif key.data == "child":
                os.read(key.fd, 512)
                self._reap()
            else:  # a client hung up (it sends nothing more) before its command ended: killed
                with contextlib.suppress(OSError):
                    os.kill(key.data, signal.SIGKILL)
                self.selector.unregister(key.fileobj)
        return True

    def _start(self, conn):
        """Fork the command's child; False when the code changed since the daemon loaded it."""
        try:
            conn.settimeout(10)
            request, fds = _receive(conn)
        except (OSError, ValueError):
            conn.close()
            return True
        if _loaded_files(self.directories) != self.files:
            for fd in fds:
                os.close(fd)
            return False  # its client learns it once the daemon has ended
        pid = os.fork()
        if pid == 0:  # none of the daemon's descriptors: only the command's
            _child(request, fds, [*self.closing, self.selector.fileno(), *(c.fileno() for c in self.children.values())])
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        with contextlib.suppress(OSError):  # a client gone already: it reads as hung up, below
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        self.selector.register(conn, selectors.EVENT_READ, pid)
        return True

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
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(ended).encode() + b"\n")
            conn.close()


def _receive(conn):
    """A command's request and the client's stdin, stdout and stderr."""
    head, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
    try:
        if len(head) != _HEADER.size or len(fds) != 3:
            raise ValueError("not a request")
        (size,) = _HEADER.unpack(head)
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ValueError("cut short")
            data += chunk
        return json.loads(data), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


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
    """The command, in the forked child: the client's process in all but pid."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
        from .program import main

        main()
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
