"""Hosts that cannot be reached or trusted: a refused connection, a name that does not
resolve, a host that drops every packet, one that accepts but never speaks SSH, a key
it does not know, a host key that is not the one on record. Each ends in one line
naming the host and a non-zero exit, within a bounded time; with several hosts, the
others still deploy."""

import socket
import subprocess
import sys
import threading
import time

import pytest
from faultkit import REPO_ROOT, cli_env, state_file

BOUND = 20  # seconds: a connect timeout of 10 s plus the CLI's own start


def _deployer(*args, env=None, timeout=60):
    """`python -m deployer ARGS` without the test sshd's -H; (result, seconds)."""
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-m", "deployer", *map(str, args)], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"deployer {args} still running after {timeout}s") from None
    return result, time.monotonic() - started


def _one_line_naming(result, host):
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert host in lines[0], lines[0]


@pytest.fixture
def blackhole():
    """A local port whose SYNs are dropped (its accept queue is full): connecting hangs
    as it does to a host that is down, until the connect timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    filler.settimeout(1)
    probe = socket.socket()
    probe.settimeout(1)
    with pytest.raises(OSError):  # the queue is full: the next connect gets no answer
        probe.connect(server.getsockname())
    probe.close()
    yield server.getsockname()[1]
    filler.close()
    server.close()


@pytest.fixture
def mute_server():
    """A port that accepts connections and never says a word (no SSH banner)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_refused_connection_is_one_line_naming_the_host(sshd, app):
    result, seconds = _deployer("-H", "root@127.0.0.1:1", "-i", sshd.key, "deploy", app, "--instance", "x")

    _one_line_naming(result, "root@127.0.0.1:1")
    assert result.returncode == 3  # README: the host could not be reached
    assert seconds < BOUND


def test_a_host_name_that_does_not_resolve_is_one_line_naming_the_host(sshd, app):
    result, seconds = _deployer("-H", "root@no-such-host.invalid", "-i", sshd.key, "status", "x")

    _one_line_naming(result, "no-such-host.invalid")
    assert seconds < BOUND


def test_an_unreachable_host_fails_within_the_connect_timeout_given(sshd, blackhole):
    result, seconds = _deployer("-t", "3", "-H", f"root@127.0.0.1:{blackhole}", "-i", sshd.key, "status", "x")

    _one_line_naming(result, f"127.0.0.1:{blackhole}")
    assert seconds < 3 + BOUND / 2


def test_an_unreachable_host_fails_within_a_bounded_time_without_a_timeout_given(sshd, blackhole):
    """Fabric's own default is to wait for the kernel to give up (about two minutes)."""
    result, seconds = _deployer("-H", f"root@127.0.0.1:{blackhole}", "-i", sshd.key, "status", "x",
                                timeout=BOUND + 2)

    _one_line_naming(result, f"127.0.0.1:{blackhole}")
    assert seconds < BOUND


def test_a_host_that_never_speaks_ssh_fails_within_a_bounded_time(sshd, mute_server):
    result, seconds = _deployer("-H", f"root@127.0.0.1:{mute_server}", "-i", sshd.key, "status", "x",
                                timeout=BOUND + 2)

    _one_line_naming(result, f"127.0.0.1:{mute_server}")
    assert seconds < BOUND


def test_a_key_the_host_does_not_know_is_one_line_naming_the_host(sshd, tmp_path):
    key = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)

    result, seconds = _deployer("-H", sshd.target, "-i", key, "status", "x",
                                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),  # no agent, no ~/.ssh keys
                                     "FABRIC_DEPLOYER_KNOWN_HOSTS": str(sshd.known_hosts)})

    _one_line_naming(result, sshd.target)
    assert "auth" in result.stderr.lower(), result.stderr
    assert result.returncode == 3
    assert seconds < BOUND


def test_a_host_whose_key_is_not_the_one_in_known_hosts_is_refused(sshd, tmp_path, app, unique_instance):
    """~/.ssh/known_hosts says the host has another key: that is a man in the middle
    until proven otherwise, and nothing may be sent to it."""
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True, timeout=30)
    (tmp_path / ".ssh").mkdir()
    kind, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    (tmp_path / ".ssh" / "known_hosts").write_text(f"[{sshd.host}]:{sshd.port} {kind} {key}\n")

    result, _ = _deployer("-H", sshd.target, "-i", sshd.key, "deploy", app, "--instance", unique_instance,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)})

    _one_line_naming(result, sshd.target)
    assert "host key" in result.stderr.lower(), result.stderr
    assert not state_file(sshd, unique_instance).exists()


def test_a_host_whose_key_is_in_the_users_known_hosts_is_trusted(sshd, tmp_path, app, unique_instance):
    """README: host keys are checked against ~/.ssh/known_hosts."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(sshd.known_hosts.read_text())

    result, _ = _deployer("-H", sshd.target, "-i", sshd.key, "deploy", app, "--instance", unique_instance,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    assert state_file(sshd, unique_instance).is_file()


def test_a_host_whose_key_is_not_the_one_in_the_known_hosts_setting_is_refused(sshd, tmp_path, app, unique_instance):
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True, timeout=30)
    kind, key = (tmp_path / "impostor.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {kind} {key}\n")

    result, _ = _deployer("-H", sshd.target, "-i", sshd.key, "deploy", app, "--instance", unique_instance,
                          env=cli_env(sshd, FABRIC_DEPLOYER_KNOWN_HOSTS=str(known)))

    _one_line_naming(result, sshd.target)
    assert "host key" in result.stderr.lower(), result.stderr
    assert not state_file(sshd, unique_instance).exists()


def test_a_host_whose_key_is_unknown_is_refused(sshd, tmp_path, app, unique_instance):
    result, _ = _deployer("-H", sshd.target, "-i", sshd.key, "deploy", app, "--instance", unique_instance,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)})

    _one_line_naming(result, sshd.target)
    assert result.returncode == 3
    assert "known_hosts" in result.stderr, result.stderr
    assert not state_file(sshd, unique_instance).exists()


def test_with_several_hosts_an_unreachable_one_does_not_stop_the_others(sshd, app, unique_instance):
    result, _ = _deployer("-H", f"root@127.0.0.1:1,{sshd.target}", "-i", sshd.key,
                          "deploy", app, "--instance", unique_instance, env=cli_env(sshd))

    assert result.returncode != 0, result
    assert "root@127.0.0.1:1" in result.stderr, result.stderr
    assert state_file(sshd, unique_instance).is_file(), f"{sshd.target} was not deployed:\n{result.stderr}"
