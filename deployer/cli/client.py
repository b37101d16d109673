"""The ``deployer`` command's thin client: hands the command to its daemon (daemon.py),
or runs it in its own process when there is none or the daemon declines.

Everything here is the standard library: this is what each command loads before it
knows whether Fabric, invoke and paramiko need loading at all.
"""

import hashlib
import json
import os
import resource
import signal
import socket
import struct
import sys

IDLE = 600  # seconds a daemon waits for a command before it ends
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGWINCH, signal.SIGQUIT)
PROMPTS = ("--prompt-for-login-password", "--prompt-for-passphrase", "--prompt-for-sudo-password")
HEADER = struct.Struct("!I")


def main():
    """The ``deployer`` command: through the daemon when there is one."""
    idle = _idle()
    facts = inherited() if idle and _supported() and not any(a.startswith(PROMPTS) for a in sys.argv) else None
    path = socket_path(facts) if facts is not None else None
    if path is not None:
        code = _through(path, facts)
        if code is not None and code is not DECLINED:
            sys.exit(code)
        if code is None:
            _spawn(path, idle)
    from .program import main as in_process

    in_process()


DECLINED = object()  # the daemon runs no command of a process unlike its own


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
    return all(hasattr(socket, name) for name in ("AF_UNIX", "send_fds", "SO_PEERCRED")) and hasattr(os, "fork")


def inherited():
    """What a process started now inherits that a fork of the daemon cannot take over from
    the client: user and group ids, supplementary groups, resource limits, scheduling
    priority, cgroup and namespaces. The daemon compares them with its own, and declines a
    command whose process would differ. (The umask, the environment, the directory and
    ignored signals it does take over.)"""
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")}
    namespaces = {}
    for name in _listing("/proc/self/ns"):
        try:
            namespaces[name] = os.readlink(f"/proc/self/ns/{name}")
        except OSError:
            namespaces[name] = None
    try:
        with open("/proc/self/cgroup") as f:
            cgroup = f.read()
    except OSError:
        cgroup = None
    ids = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), sorted(os.getgroups())]
    facts = {"ids": ids, "rlimits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0), "cgroup": cgroup,
             "namespaces": namespaces}
    return json.loads(json.dumps(facts, sort_keys=True))  # as the daemon receives them: lists, not tuples


def _listing(directory):
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def socket_path(facts=None):
    """The socket of the daemon for this Python, search path and ``inherited()`` facts
    (None: no private directory for it). Commands of a process unlike another (another
    login's cgroup, other limits) so have a daemon of their own."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    directory = os.path.join(base, "deployer" if "XDG_RUNTIME_DIR" in os.environ else f"deployer-{os.getuid()}")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.lstat(directory)
        key = json.dumps([sys.executable, _search_path(), os.path.dirname(os.path.abspath(__file__)), facts])
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(directory):
        return None  # someone else's, or open to others: never trust it
    return os.path.join(directory, hashlib.sha256(key.encode()).hexdigest()[:16] + ".sock")


def _search_path():
    """sys.path, with the working directory (``python -m`` puts it first) as a placeholder:
    one daemon serves a ``python -m deployer`` in any directory."""
    return ["." if sys.path[:1] == [os.getcwd()] else sys.path[0], *sys.path[1:]]


def _through(path, facts):
    """Run this command in the daemon; its exit code (None: no daemon took it; DECLINED:
    the daemon runs no command of this process, which runs it itself)."""
    group = []  # the command's process group (its pid), once the daemon says it
    pending = []  # signals received before that
    ignored = [number for number in (*FORWARDED, signal.SIGTSTP) if signal.getsignal(number) == signal.SIG_IGN]

    def forward(number, frame):
        """To the command and every process it started, as the terminal would send it to
        the client's process group."""
        if not group:
            pending.append(number)
            return
        try:
            os.killpg(group[0], number)
        except OSError:
            pass  # it has just ended

    def suspend(number, frame):
        """Ctrl-Z: the command's group stops with its client, and goes on with it (fg, bg).
        SIGTSTP itself, for each process to take as it would from a terminal (``docker
        run`` hands it to its container); the group, its parent the daemon, is no orphan
        and so does not discard it."""
        forward(signal.SIGTSTP, frame)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here until SIGCONT
        signal.signal(signal.SIGTSTP, suspend)
        forward(signal.SIGCONT, frame)

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handlers = {number: signal.signal(number, forward) for number in FORWARDED if number not in ignored}
    if signal.SIGTSTP not in ignored:
        handlers[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, suspend)
    try:
        conn.connect(path)
        request = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "path": sys.path, "umask": _umask(),
                   "ignored": [int(number) for number in ignored], "inherited": facts}
        data = json.dumps(request).encode()
        socket.send_fds(conn, [HEADER.pack(len(data))], [0, 1, 2])
        conn.sendall(data)
        reader = conn.makefile("rb")
        started = json.loads(reader.readline() or "{}")
    except (OSError, ValueError):
        started = {}
    if "pid" not in started:  # no daemon, one of changed code (it ends), or declined
        conn.close()
        for number, handler in handlers.items():
            signal.signal(number, handler)
        for number in pending:
            os.kill(os.getpid(), number)
        return DECLINED if "declined" in started else None
    group.append(started["pid"])
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
