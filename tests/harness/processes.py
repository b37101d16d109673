"""The machine's processes, read from /proc: the tests look for what deployer left running
(its daemons, the host's scripts), the bench stops its daemons. Also how the harness stops
a process it started."""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def stop(process, timeout=10):
    """Terminate a process the harness started; kill it if it is still there after timeout."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_pid(pid_file, marker, timeout=20):
    """Terminate the process a pid file names if it still runs and its command line holds
    marker (a directory of ours: never another's process that took the number); kill it
    after timeout."""
    try:
        pid = int(Path(pid_file).read_text().strip())
        if marker not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def all_processes():
    """pid -> (ppid, argv) for every process, from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        out[int(entry)] = (ppid, argv)
    return out


def descendants(pid, processes=None):
    processes = processes or all_processes()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (pp, _) in processes.items() if pp == parent]
        found += children
        frontier += children
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def sessions_holding(path):
    """The session ids of the processes that have the file at path open. A process or an fd
    that goes away while /proc is read is passed over."""
    target, sessions = os.path.realpath(path), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    with open(f"/proc/{entry}/stat") as f:
                        sessions.add(int(f.read().rsplit(")", 1)[1].split()[3]))
            except OSError:
                pass
    return sessions


def daemons(within=""):
    """The pids of deployer daemons (`python -m deployer[...].daemon SOCKET IDLE`) whose socket
    is within a directory (not the commands they run: forks, whose argv is the daemon's)."""
    table = all_processes()

    def daemon(pid):
        argv = table.get(pid, (0, []))[1]
        module = argv[2] if argv[1:2] == ["-m"] and len(argv) > 3 else ""
        return module.startswith("deployer.") and module.endswith(".daemon") and argv[3].startswith(str(within))

    return [pid for pid, (ppid, _) in table.items() if daemon(pid) and not daemon(ppid)]


def kill_daemons(within):
    """SIGKILL the deployer daemons whose socket is within a directory (XDG_RUNTIME_DIR),
    and every command they still run."""
    for daemon in daemons(within):
        for pid in [daemon, *descendants(daemon)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
