"""Fixtures for integration tests: a real dockerd, a local test image and a throwaway sshd.

These fixtures never skip: a missing engine, image or sshd is a failure, so CI cannot
go green by silently testing nothing. `.ci/setup` prepares a machine for them.
"""

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from support import APP, REPO_ROOT

IMAGE = "local/busybox:latest"
SSHD = "/usr/sbin/sshd"
CLI_TIMEOUT = 120


def _fail(msg):
    pytest.fail(msg, pytrace=False)


@dataclasses.dataclass(frozen=True)
class SSHHost:
    host: str
    port: int
    user: str
    key: Path  # client private key
    state_dir: Path  # DEPLOYER_STATE_DIR in every ssh session (not created in advance)
    volume_dir: Path  # DEPLOYER_VOLUME_DIR in every ssh session (not created in advance)
    known_hosts: Path  # a known_hosts file holding this sshd's host key
    log: Path  # sshd's own log, for debugging

    @property
    def target(self):
        return f"{self.user}@{self.host}:{self.port}"


@pytest.fixture(scope="session")
def docker_engine():
    try:
        res = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        _fail(f"docker engine unusable ({e}); run .ci/setup")
    if res.returncode != 0:
        _fail(f"`docker info` failed; run .ci/setup\n{res.stderr}")
    return res.stdout.strip()


@pytest.fixture(scope="session")
def busybox_image(docker_engine):
    res = subprocess.run([str(REPO_ROOT / ".ci" / "busybox-image")],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        _fail(f".ci/busybox-image failed:\n{res.stdout}\n{res.stderr}")
    return IMAGE


@pytest.fixture(scope="session")
def slug_images(busybox_image):
    """The stand-in slug builder and runner (.ci/slug-images): deployer's settings for them."""
    res = subprocess.run([str(REPO_ROOT / ".ci" / "slug-images")], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        _fail(f".ci/slug-images failed:\n{res.stdout}\n{res.stderr}")
    return {"FABRIC_DEPLOYER_SLUG_BUILDER_IMAGE": "local/slugbuilder:latest",
            "FABRIC_DEPLOYER_SLUG_RUNNER_IMAGE": "local/slugrunner:latest"}


@pytest.fixture(scope="session")
def real_images(docker_engine):
    """local/redis, local/postgres and local/python, built from Debian's packages
    (.ci/real-images: minutes the first time, then nothing while the packages stay)."""
    res = subprocess.run([str(REPO_ROOT / ".ci" / "real-images")], capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        _fail(f".ci/real-images failed:\n{res.stdout}\n{res.stderr}")
    return {"redis": "local/redis:latest", "postgres": "local/postgres:latest", "python": "local/python:latest"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deployer-test",
                    "-f", str(path)], check=True, timeout=30)


@contextlib.contextmanager
def _sshd(tmp, env=None):
    """An OpenSSH server on a free loopback port; every session gets DEPLOYER_STATE_DIR,
    DEPLOYER_VOLUME_DIR (under tmp) and ``env`` (e.g. DOCKER_HOST: another engine)."""
    if not os.access(SSHD, os.X_OK) or not shutil.which("ssh-keygen"):
        _fail(f"{SSHD} or ssh-keygen missing (openssh-server); run .ci/setup")
    host_key, client_key = tmp / "host_key", tmp / "client_key"
    _keygen(host_key)
    _keygen(client_key)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    state_dir, volume_dir = tmp / "state", tmp / "volumes"
    port = _free_port()
    cfg = tmp / "sshd_config"
    setenv = {"DEPLOYER_STATE_DIR": state_dir, "DEPLOYER_VOLUME_DIR": volume_dir, **(env or {})}
    # sshd keeps only the first SetEnv directive, hence one line for all variables.
    cfg.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {tmp / "sshd.pid"}
AuthorizedKeysFile {tmp / "authorized_keys"}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
SetEnv {" ".join(f"{k}={v}" for k, v in setenv.items())}
""")
    host_pub = (tmp / "host_key.pub").read_text().split()
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir

    log = tmp / "sshd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)],
                                stdout=logf, stderr=subprocess.STDOUT)
    try:
        _wait_for_banner(proc, port, log)
        yield SSHHost(host="127.0.0.1", port=port, user="root", key=client_key,
                      state_dir=state_dir, volume_dir=volume_dir,
                      known_hosts=known_hosts, log=log)
    finally:
        _stop(proc)


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    with _sshd(tmp_path_factory.mktemp("sshd")) as host:
        yield host


@pytest.fixture(scope="session")
def second_engine(busybox_image):
    """A second Docker engine on this machine (its own bridge, data and socket), holding
    the test image: a second host's containers never meet the first's. Its DOCKER_HOST."""
    root = Path(tempfile.mkdtemp(prefix="/tmp/de"))  # short: containerd's socket paths are limited
    bridge = _own_bridge()
    sock = f"unix://{root}/docker.sock"
    log = root / "dockerd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen(["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "x"),
                                 "--pidfile", str(root / "pid"), "-H", sock, "--bridge", bridge],
                                stdout=logf, stderr=subprocess.STDOUT)
    env = dict(os.environ, DOCKER_HOST=sock)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "info"], env=env, capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                _fail(f"second dockerd did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        save = subprocess.Popen(["docker", "save", busybox_image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=env, check=True, capture_output=True)
        save.wait()
        yield sock
    finally:
        ids = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True)
        _stop(proc)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _own_bridge():
    """A bridge for the second engine, its name and subnet unused on this machine, so two
    test runs at once (or a bench run) never share one."""
    used = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    number = next(n for n in range(200, 250) if f"172.31.{n}." not in used)
    bridge = f"br-de{os.getpid() % 100000}-{number}"[:15]
    for cmd in (["ip", "link", "add", bridge, "type", "bridge"],
                ["ip", "addr", "add", f"172.31.{number}.1/24", "dev", bridge],
                ["ip", "link", "set", bridge, "up"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return bridge


@pytest.fixture(scope="session")
def three_hosts(tmp_path_factory, second_engine, docker_engine):
    """Three SSH hosts: one on this engine, one on the second engine, and one whose Docker
    engine is unreachable (its deploys fail)."""
    with contextlib.ExitStack() as stack:
        hosts = [
            stack.enter_context(_sshd(tmp_path_factory.mktemp("host-a"))),
            stack.enter_context(_sshd(tmp_path_factory.mktemp("host-b"), {"DOCKER_HOST": second_engine})),
            stack.enter_context(_sshd(tmp_path_factory.mktemp("host-c"), {"DOCKER_HOST": "unix:///nonexistent.sock"})),
        ]
        yield hosts


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory):
    """A real etcd v3 server (Debian's etcd-server) on free loopback ports: its client URL."""
    etcd = shutil.which("etcd")
    if not etcd:
        _fail("etcd missing (Debian package etcd-server); run .ci/setup")
    root = tmp_path_factory.mktemp("etcd")
    client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
    log = root / "etcd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([etcd, "--name", "test", "--data-dir", str(root / "data"),
                                 "--listen-client-urls", client, "--advertise-client-urls", client,
                                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                                 "--initial-cluster", f"test={peer}"], stdout=logf, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _answers(client + "/version"):
            if proc.poll() is not None or time.monotonic() > deadline:
                _fail(f"etcd did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield client
    finally:
        _stop(proc)


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def cli_on(docker_engine, busybox_image):
    """cli_on(host) -> run(*args, ...): like deployer_cli, against the given SSHHost."""
    return lambda host: _runner("deployer", host, _local_env(host))


def _wait_for_banner(proc, port, log, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _fail(f"sshd exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    _fail(f"sshd on port {port} gave no banner within {timeout}s:\n{log.read_text()}")


def _command(module, sshd, repo_env, args, host, env):
    """The argv and environment of `python -m module` against the test sshd (or locally)."""
    core = ["-H", sshd.target, "-i", str(sshd.key)] if host else []
    cmd = [sys.executable, "-m", module, *core, *map(str, args)]
    # deployer refuses unknown host keys: the test sshd's key is in its own known_hosts
    full_env = dict(os.environ, FABRIC_DEPLOYER_KNOWN_HOSTS=str(sshd.known_hosts))
    # the deployer of this checkout, whatever the cwd (an editable install may point elsewhere)
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    if not host:
        # Local mode acts on this machine: keep its state in the test dirs, too.
        full_env.update(repo_env)
    full_env.update(env or {})
    return cmd, full_env


def _runner(module, sshd, repo_env):
    def run(*args, host=True, check=None, env=None, cwd=None, input=None, stdin=None):
        cmd, full_env = _command(module, sshd, repo_env, args, host, env)
        try:
            if input is None and stdin is None:
                stdin = subprocess.DEVNULL  # as in CI: never this terminal, where destroy would ask
            res = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd or REPO_ROOT,
                                 input=input, stdin=stdin, timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            _fail(f"timed out after {CLI_TIMEOUT}s: {cmd}\n"
                  f"--- stdout\n{e.stdout}\n--- stderr\n{e.stderr}")
        shown = f"{cmd} -> {res.returncode}\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}"
        if check is True:
            assert res.returncode == 0, shown
        elif check is False:
            assert res.returncode != 0, shown
        return res
    return run


def _local_env(sshd):
    return {"DEPLOYER_STATE_DIR": str(sshd.state_dir),
            "DEPLOYER_VOLUME_DIR": str(sshd.volume_dir)}


@pytest.fixture
def deployer_cli(sshd, docker_engine, busybox_image):
    """run(*args, host=True, check=None, env=None, cwd=None, input=None, stdin=None) ->
    CompletedProcess of `python -m deployer`. host=False runs in local mode (no -H/-i);
    ``input`` is piped to its stdin, else ``stdin`` is it (None: /dev/null, as in CI)."""
    return _runner("deployer", sshd, _local_env(sshd))


@pytest.fixture
def deployer_started(sshd, docker_engine, busybox_image):
    """start(*args, env=None) -> Popen of `python -m deployer -H ... ARGS` (text pipes), to
    watch its output as it comes; killed if the test leaves it running."""
    procs = []

    def start(*args, env=None):
        cmd, full_env = _command("deployer", sshd, {}, args, True, env)
        procs.append(subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, text=True, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.fixture
def fab_cli(sshd, docker_engine, busybox_image):
    """Same as deployer_cli, but runs plain `python -m fabric` (uses the repo's fabfile.py)."""
    return _runner("fabric", sshd, _local_env(sshd))


@pytest.fixture
def app(tmp_path):
    """A two-service template (web with a volume and a port, worker) in a temp file."""
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    return path


@pytest.fixture
def unique_instance():
    name = f"t{secrets.token_hex(4)}"
    yield name
    _remove_containers(name)


@pytest.fixture
def other_instance(unique_instance):
    """A second throwaway instance, whose name starts with the first one's."""
    name = unique_instance + "b"
    yield name
    _remove_containers(name)


def _remove_containers(instance):
    """Best effort: never let a test leak containers (or images) into the next one."""
    label = f"label=deployer.instance={instance}"
    try:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", label],
                             capture_output=True, text=True, timeout=60).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120)
        # nor the images deployer built for it (git services)
        built = subprocess.run(["docker", "images", "-q", "--filter", f"label=deployer.instance={instance}"],
                               capture_output=True, text=True, timeout=60).stdout.split()
        if built:
            subprocess.run(["docker", "rmi", "-f", *set(built)], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        pass
