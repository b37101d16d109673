"""What the integration tests share: a two-service template, docker helpers (an HTTP GET
from inside a container, by name), waiting
for a deployer run in the background, and which processes do a command's work (the
machine's processes themselves: harness/processes.py)."""

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from harness import REPO_ROOT
from harness.poll import wait_for
from harness.processes import all_processes, daemons, descendants

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


# busybox-static's wget cannot resolve names (static glibc has no NSS: it crashes), its
# nslookup can: a name is looked up first, as any image's resolver would do it.
GET = """host=${1%:*}; port=${1##*:}
case "$host" in *[!0-9.]*) host=$(nslookup "$host" 2>/dev/null | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | tail -n 1) ;; esac
[ -n "$host" ] && exec timeout "$2" wget -qO- "http://$host:$port/"
"""


def fetch(container, address, seconds=2):
    """What an HTTP GET from the container to ``address`` (``host:port``) gets (None:
    refused, unknown or timed out)."""
    result = docker("exec", container, "sh", "-c", GET, "get", address, str(seconds))
    return result.stdout if result.returncode == 0 else None


def remove_instance(instance):
    """Best effort: never let a test leak an instance's containers, built images or
    networks into the next one (the networks last: containers may still join them)."""
    label = f"label=deployer.instance={instance}"
    try:
        ids = docker("ps", "-aq", "--filter", label).stdout.split()
        if ids:
            docker("rm", "-f", *ids)
        built = docker("images", "-q", "--filter", label).stdout.split()
        if built:
            docker("rmi", "-f", *set(built))
        networks = docker("network", "ls", "-q", "--filter", label).stdout.split()
        if networks:
            docker("network", "rm", *networks)
    except (OSError, subprocess.TimeoutExpired):
        pass


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


def many(hosts, *args, env=None, cwd=None):
    """`python -m deployer -H h1,h2,h3 -i k1 -i k2 -i k3 ARGS` against several test
    hosts at once, trusting all their host keys."""
    known = hosts[0].known_hosts.parent.parent / "all_known_hosts"
    known.write_text("".join(h.known_hosts.read_text() for h in hosts))
    keys = [arg for h in hosts for arg in ("-i", str(h.key))]
    cmd = [sys.executable, "-m", "deployer", "-H", ",".join(h.target for h in hosts), *keys, *map(str, args)]
    full_env = dict(os.environ, FABRIC_DEPLOYER_KNOWN_HOSTS=str(known), **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd or REPO_ROOT, timeout=180)


def command_processes(client, processes=None):
    """The processes doing a deployer command's work: the client's descendants, or, when a
    daemon runs the command, the daemons' (the tests run one such command at a time)."""
    processes = processes or all_processes()
    return descendants(client, processes) + [p for d in daemons() for p in descendants(d, processes)]


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


def through(runtime):
    """The environment of a command through the daemon of a socket directory of its own
    (the suite's commands run without one: tests/conftest.py)."""
    return {"XDG_RUNTIME_DIR": str(runtime), "DEPLOYER_DAEMON": "600"}


def served(runtime):
    """The one daemon of the directory, once its socket accepts commands."""
    wait_for(lambda: list(Path(runtime).glob("deployer/*.sock")), "the daemon's socket")
    (pid,) = daemons(runtime)
    return pid


def stopped(pid):
    """Whether the process is stopped (Ctrl-Z)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def children_time(pid):
    """The CPU time of the process's ended children (cutime + cstime, in clock ticks): it
    grows when a child the process forked (a command, in a daemon) has done its work."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[13]) + int(fields[14])
