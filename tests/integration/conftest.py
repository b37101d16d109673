"""Fixtures for integration tests: a real dockerd, a local test image and a throwaway sshd.

They wrap the harness (tests/harness/), which the benchmark shares, and add what only the
tests need: the deployer CLI against a test sshd, throwaway instance names.

These fixtures never skip: a missing engine, image or sshd is a failure, so CI cannot
go green by silently testing nothing. `.ci/setup` prepares a machine for them.
"""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from harness import REPO_ROOT, HarnessError, engines, etcd, processes
from harness import sshd as sshd_harness
from harness import registry as registry_harness
from harness import swarm as swarm_harness
from support import APP, remove_instance

CLI_TIMEOUT = 120


def _fail(msg):
    pytest.fail(msg, pytrace=False)


@contextlib.contextmanager
def _failing():
    """A harness piece that does not start fails the test with its message, no traceback:
    the machine lacks something (.ci/setup), the test has no bug."""
    try:
        yield
    except HarnessError as e:
        _fail(str(e))


@pytest.fixture(scope="session")
def docker_engine():
    with _failing():
        return engines.local_engine()


@pytest.fixture(scope="session")
def busybox_image(docker_engine):
    with _failing():
        engine = engines.busybox_image()
    yield engine
    left = sorted(name for name, instance in _deployer_networks() if instance.startswith(tuple(_GIVEN)))
    assert not left, f"networks left after the suite by its instances: {left}"


_GIVEN = set()  # the instance names unique_instance gave this run (another test run's share the engine)


def _deployer_networks():
    """(name, instance) of each network labelled with an instance."""
    listed = subprocess.run(["docker", "network", "ls", "--filter", "label=deployer.instance", "--format",
                             '{{.Name}} {{.Label "deployer.instance"}}'], capture_output=True, text=True, timeout=60)
    return [tuple(line.split(" ", 1)) for line in listed.stdout.splitlines() if " " in line]


@pytest.fixture(scope="session")
def slug_images(busybox_image):
    """The stand-in slug builder and runner (.ci/slug-images): deployer's settings for them."""
    with _failing():
        engines.ci_images("slug-images")
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


@contextlib.contextmanager
def _sshd(tmp, env=None):
    """An OpenSSH server on a free loopback port (harness/sshd.py): every session gets
    DEPLOYER_STATE_DIR, DEPLOYER_VOLUME_DIR (under tmp) and ``env`` (e.g. DOCKER_HOST: another engine)."""
    with _failing(), sshd_harness.running(tmp, env) as host:
        yield host


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    with _sshd(tmp_path_factory.mktemp("sshd")) as host:
        yield host


@pytest.fixture(scope="session")
def second_engine(busybox_image):
    """A second Docker engine on this machine (its own bridge, data and socket), holding
    the test image: a second host's containers never meet the first's. Its DOCKER_HOST."""
    with _failing(), engines.extra_engine(busybox_image) as engine:
        yield engine.url


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
    with _failing(), etcd.running(tmp_path_factory.mktemp("etcd")) as client:
        yield client


@pytest.fixture
def cli_on(docker_engine, busybox_image):
    """cli_on(host) -> run(*args, ...): like deployer_cli, against the given SSHHost."""
    return lambda host: _runner("deployer", host, _local_env(host))


def _command(module, sshd, repo_env, args, host, env):
    """The argv and environment of `python -m module` (a list: that program) against the
    test sshd (or locally)."""
    core = ["-H", sshd.target, "-i", str(sshd.key)] if host else []
    program = module if isinstance(module, list) else [sys.executable, "-m", module]
    cmd = [*program, *core, *map(str, args)]
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


def start_local(sshd, env, *args, **popen):
    """`python -m deployer ARGS` in local mode, in the background, as a shell's job: a process
    group of its own (which Ctrl-C and Ctrl-Z reach as a terminal sends them)."""
    cmd, full_env = _command("deployer", sshd, _local_env(sshd), args, False, env)
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=full_env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, process_group=0, **popen)


@pytest.fixture
def runtime(tmp_path):
    """A daemon socket directory of the test's own (XDG_RUNTIME_DIR); its daemons, and any
    command they still run (a failed test's), are killed at the end."""
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    yield directory
    for daemon in processes.daemons(directory):
        for pid in [daemon, *processes.descendants(daemon)]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


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


def fab_executable():
    """The real `fab` (the console script installed with fabric, beside this Python's own
    scripts, else on PATH): what a user types, not `python -m fabric`."""
    beside = Path(sysconfig.get_path("scripts")) / "fab"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("fab")
    if not found:
        _fail("the `fab` executable is missing (it is installed with fabric); run .ci/setup")
    return found


@pytest.fixture
def fab(sshd, docker_engine, busybox_image):
    """Same as deployer_cli, but runs the real `fab` executable (the repo's fabfile.py, or
    the one of cwd=)."""
    return _runner([fab_executable()], sshd, _local_env(sshd))


@pytest.fixture
def app(tmp_path):
    """A two-service template (web with a volume and a port, worker) in a temp file."""
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    return path


@pytest.fixture
def unique_instance(request):
    """A throwaway instance name: ``t`` and random hex, or the test module's
    ``INSTANCE_PREFIX`` (whose instances are then told apart from other modules' on an
    engine shared with other test runs)."""
    name = f"{getattr(request.module, 'INSTANCE_PREFIX', 't')}{secrets.token_hex(4)}"
    _GIVEN.add(name)  # its networks, and those of instances named after it (other_instance), are checked at the end
    yield name
    _remove_containers(name)


@pytest.fixture
def other_instance(unique_instance):
    """A second throwaway instance, whose name starts with the first one's."""
    name = unique_instance + "b"
    yield name
    _remove_containers(name)


def _remove_containers(instance):
    """Its containers, built images and networks (support.remove_instance)."""
    remove_instance(instance)


@pytest.fixture(scope="session")
def swarm(busybox_image):
    """A two-node Docker Swarm of engines of its own (harness/swarm.py), the test image on
    both nodes; torn down at the end of the session, whatever happened."""
    with _failing(), swarm_harness.running([busybox_image]) as cluster:
        yield cluster


@pytest.fixture
def registry(swarm):
    """``HOST:PORT`` of a Docker registry the swarm's nodes reach (harness/registry.py), for the test."""
    with _failing(), registry_harness.running(swarm.host) as address:
        yield address


@pytest.fixture(scope="session")
def swarm_host(tmp_path_factory, swarm):
    """An SSH host whose sessions reach the swarm's manager (DOCKER_HOST)."""
    with _sshd(tmp_path_factory.mktemp("swarm-host"), {"DOCKER_HOST": swarm.manager.engine.url}) as host:
        yield host
