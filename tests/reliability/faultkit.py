"""Helpers of the reliability tests: templates on disk, the test sshd's process tree,
real faults (a dropped connection, a killed client, an engine gone)."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from harness import REPO_ROOT
from harness.poll import wait_for
from harness.processes import all_processes, descendants
from support import docker

# A service that stops slowly: no init, its shell ignores SIGTERM, so `docker stop`
# waits out stop_timeout. Replacing it leaves a window to put a fault in.
SLOW_STOP = {
    "image": "local/busybox",
    "init": False,
    "stop_timeout": 3,
    "cmd": ["sh", "-c", 'trap "" TERM; while true; do sleep 1; done'],
}


def write_template(directory, data, name="t.yaml"):
    """A template file from Python data (JSON is YAML, and quotes every string exactly)."""
    path = Path(directory) / name
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def state_file(sshd, instance):
    return sshd.state_dir / "instances" / instance / "state.json"


# -- processes ------------------------------------------------------------------------

def remote_scripts(sshd):
    """The pids of the `sh -s` scripts deployer runs through the test sshd (not their
    forks: a command substitution is an `sh -s` too, until it execs its command)."""
    table = all_processes()

    def script(pid):
        return table.get(pid, (0, []))[1][:2] == ["sh", "-s"]

    return [p for p in descendants(sshd.process.pid, table) if script(p) and not script(table[p][0])]


def drop_connection(sshd):
    """Kill (SIGKILL) the sshd session process serving the one running deployer script:
    the TCP connection drops as if the network went away; the script itself lives on."""
    (script,) = wait_for(lambda: remote_scripts(sshd), what="the remote script")
    session = all_processes()[script][0]
    os.kill(session, signal.SIGKILL)
    return script


# -- the CLI in the background ----------------------------------------------------------

def cli_env(sshd, **extra):
    """The environment of a deployer run against the test sshd: its host key is known."""
    return {**os.environ, "FABRIC_DEPLOYER_KNOWN_HOSTS": str(sshd.known_hosts), **extra}


def start_cli(sshd, *args, env=None):
    """`python -m deployer -H <test sshd> ARGS` running in the background (a Popen)."""
    cmd = [sys.executable, "-m", "deployer", "-H", sshd.target, "-i", str(sshd.key), *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(sshd, **(env or {})))


# -- docker -----------------------------------------------------------------------------

def running(container):
    result = docker("inspect", "--format", "{{.State.Running}}", container)
    return result.returncode == 0 and result.stdout.strip() == "true"


def exists(container):
    return docker("inspect", "--format", "{{.Id}}", container).returncode == 0


def container_id(container):
    result = docker("inspect", "--format", "{{.Id}}", container)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def inspect_json(container):
    result = docker("inspect", container)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


class EngineProxy:
    """A unix socket forwarding to the Docker engine's: DOCKER_HOST=unix://<path> reaches
    the real engine until stop(), which makes it unreachable at once (every open
    connection cut, nothing listening), as if dockerd had died; start() brings it back."""

    def __init__(self, path, upstream="/var/run/docker.sock"):
        self.path, self.upstream = str(path), upstream
        self.url = f"unix://{self.path}"
        self._listener, self._conns, self._lock = None, [], threading.Lock()

    def start(self):
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(self.path)
        self._listener.listen(64)
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self):
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX)
            try:
                server.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def start_local_cli(sshd, *args, env=None):
    """`python -m deployer ARGS` in local mode (no -H) in the background, with the test
    sshd's state and volume dirs (as deployer_cli(host=False) uses them)."""
    local = {"DEPLOYER_STATE_DIR": str(sshd.state_dir), "DEPLOYER_VOLUME_DIR": str(sshd.volume_dir)}
    cmd = [sys.executable, "-m", "deployer", *map(str, args)]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(sshd, **local, **(env or {})))
