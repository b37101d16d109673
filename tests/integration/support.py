"""What the integration tests share: a two-service template, docker helpers, waiting
for a deployer run in the background, and the machine's processes."""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

APP = """\
Env: {TZ: UTC}
web:
  image: local/busybox
  cmd: [httpd, -f, -p, "8080", -h, /www]
  volumes: [/www]
  ports: ["127.0.0.1::8080"]
  env: {GREETING: hello}
worker:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 3600; done'
"""


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def inspect(name, fmt):
    result = docker("inspect", "--format", fmt, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def env_of(container):
    return dict(line.split("=", 1) for line in json.loads(inspect(container, "{{json .Config.Env}}")))


def containers_of(instance):
    """The names of every container Docker has for an instance, retained ones included."""
    result = docker("ps", "-a", "--filter", f"label=deployer.instance={instance}", "--format", "{{.Names}}")
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def finish(proc, timeout=120):
    """Wait for a background CLI; (exit code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the CLI did not end within {timeout}s\n--- stdout\n{out}\n--- stderr\n{err}")
    return proc.returncode, out, err


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


def daemons(within=""):
    """The pids of deployer daemons (deployer/daemon.py) whose socket is within a directory
    (not the commands they run: forks, whose argv is the daemon's)."""
    table = all_processes()

    def daemon(pid):
        argv = table.get(pid, (0, []))[1]
        return argv[1:3] == ["-m", "deployer.cli.daemon"] and argv[3:4] and argv[3].startswith(str(within))

    return [pid for pid, (ppid, _) in table.items() if daemon(pid) and not daemon(ppid)]


def command_processes(client, processes=None):
    """The processes doing a deployer command's work: the client's descendants, or, when a
    daemon runs the command, the daemons' (the tests run one such command at a time)."""
    processes = processes or all_processes()
    return descendants(client, processes) + [p for d in daemons() for p in descendants(d, processes)]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def on_terminal(sshd, *args, env=None, timeout=120, answer=None):
    """Run ``deployer -H SSHD ARGS`` with a terminal as its stdout and stderr (NO_COLOR unset
    unless given): (exit code, what the terminal showed, its CRLF line ends as LF). With an
    ``answer``, its stdin is the terminal too, and the answer is typed once it asks [y/N]."""
    master, terminal = os.openpty()
    cmd = [sys.executable, "-m", "deployer", "-H", sshd.target, "-i", str(sshd.key), *map(str, args)]
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(FABRIC_DEPLOYER_KNOWN_HOSTS=str(sshd.known_hosts), **(env or {}))
    stdin = subprocess.DEVNULL if answer is None else terminal
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=terminal, stderr=terminal, cwd=REPO_ROOT, env=full_env)
    os.close(terminal)
    shown, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not data:
                    break
                shown.append(data)
                if answer is not None and b"[y/N]" in b"".join(shown):
                    os.write(master, answer.encode() + b"\n")
                    answer = None
        else:
            proc.kill()
        return proc.wait(10), b"".join(shown).decode().replace("\r\n", "\n")
    finally:
        os.close(master)
