"""The SSH connection drops in the middle of a deploy (the sshd session process serving
it is SIGKILLed, so the TCP connection dies as if the network went away), and the
client is SIGKILLed: the old containers of unfinished services still run, no lock is
left, nothing half-sent is ever run, and the next deploy converges to the template."""

import fcntl
import json
import os
import signal

import fabric
import pytest
from faultkit import (SLOW_STOP, container_id, drop_connection, exists, remote_scripts, running, start_cli,
                      start_local_cli, state_file, write_template)
from harness.poll import wait_for
from harness.processes import alive, all_processes, descendants
from support import command_processes, env_of, finish

from deployer.errors import DeployerError
from deployer.remote.host import Host
from deployer.settings import Settings
from deployer.model.state import InstanceState


def _template(round_):
    """Two slow-to-stop services (start-first) and one with a volume (stop-first)."""
    slow = lambda: json.loads(json.dumps(SLOW_STOP)) | {"env": {"ROUND": round_}}  # noqa: E731
    return {"a": slow(), "b": slow(),
            "c": {"image": "local/busybox", "cmd": ["sleep", "3600"], "volumes": ["/data"], "env": {"ROUND": round_}}}


def lock_is_free(sshd, instance):
    """flock(2) the instance's lock file the way the host script does: free or not."""
    with open(sshd.state_dir / "instances" / instance / "lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def converged(deployer_cli, instance, template, round_):
    """The next deploy (waiting for any lock) leaves every service running the template,
    the state describing them, and a deploy after it has nothing to do."""
    deployer_cli("deploy", template, "--instance", instance, "--lock-wait", 10, check=True)
    for service in ("a", "b", "c"):
        assert running(f"{instance}.{service}"), service
        assert env_of(f"{instance}.{service}")["ROUND"] == round_, service
    again = deployer_cli("deploy", template, "--instance", instance, "--lock-wait", 0, check=True)
    assert "is up to date" in again.stdout, again.stdout
    status = deployer_cli("status", instance, check=True).stdout
    assert "differs from the state" not in status and "missing" not in status, status


@pytest.fixture
def deployed(deployer_cli, unique_instance, tmp_path):
    one = write_template(tmp_path, _template("one"), "one.yaml")
    deployer_cli("deploy", one, "--instance", unique_instance, check=True)
    return dict(one=one, two=write_template(tmp_path, _template("two"), "two.yaml"))


@pytest.fixture
def connection(sshd):
    config = fabric.Config(overrides={"deployer": {"known_hosts": str(sshd.known_hosts)}})
    conn = fabric.Connection(sshd.host, user=sshd.user, port=sshd.port, config=config,
                             connect_kwargs={"key_filename": str(sshd.key), "look_for_keys": False,
                                             "allow_agent": False})
    yield conn
    conn.close()


def test_a_connection_dropped_while_the_host_waits_for_the_plan_changes_nothing_and_frees_the_lock(
    deployer_cli, deployed, unique_instance, sshd, connection
):
    host = Host.for_context(connection, Settings.of(connection.config))
    before = {s: container_id(f"{unique_instance}.{s}") for s in "abc"}
    state = state_file(sshd, unique_instance).read_bytes()

    try:
        with host.deploying(unique_instance, ("local/busybox",), "tester@test", 10) as deploy:
            assert deploy.facts.state.release == 1
            assert not lock_is_free(sshd, unique_instance)
            script = drop_connection(sshd)
            wait_for(lambda: not alive(script), what="the host script to end with its connection")
    except DeployerError:
        pass  # closing a dead connection may fail too

    assert lock_is_free(sshd, unique_instance)
    assert {s: container_id(f"{unique_instance}.{s}") for s in "abc"} == before
    assert state_file(sshd, unique_instance).read_bytes() == state
    converged(deployer_cli, unique_instance, deployed["two"], "two")


def test_a_plan_cut_off_in_transit_is_never_run(deployer_cli, deployed, unique_instance, sshd, connection):
    """The host runs the plan only once its last line has arrived."""
    host = Host.for_context(connection, Settings.of(connection.config))
    before = {s: container_id(f"{unique_instance}.{s}") for s in "abc"}

    try:
        with host.deploying(unique_instance, ("local/busybox",), "tester@test", 10) as deploy:
            plan = f"docker rm -f {unique_instance}.a {unique_instance}.b {unique_instance}.c\n"
            deploy.session.send(f"{len(plan) + 1000}\n{plan}")  # its size, then only part of it
            script = drop_connection(sshd)
            wait_for(lambda: not alive(script), what="the host script to end with its connection")
    except DeployerError:
        pass  # closing a dead connection may fail too

    assert {s: container_id(f"{unique_instance}.{s}") for s in "abc"} == before
    assert all(running(f"{unique_instance}.{s}") for s in "abc")
    assert lock_is_free(sshd, unique_instance)


def test_a_connection_dropped_mid_deploy_leaves_services_running_no_lock_and_the_next_deploy_converges(
    deployer_cli, deployed, unique_instance, sshd
):
    client = start_cli(sshd, "deploy", deployed["two"], "--instance", unique_instance)
    # a's replacement runs; the old a is being stopped (3 s: it ignores SIGTERM)
    wait_for(lambda: exists(f"{unique_instance}.a.r1") or client.poll() is not None, what="a being replaced")
    assert client.poll() is None, finish(client)
    old_b = container_id(f"{unique_instance}.b")

    script = drop_connection(sshd)
    code, out, err = finish(client)

    assert code == 1, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert sshd.target in err, err
    assert running(f"{unique_instance}.b") or container_id(f"{unique_instance}.b") != old_b
    # The host finishes the plan it received; then its lock goes with its process.
    wait_for(lambda: not alive(script), timeout=60, what="the host script to finish the plan")
    assert lock_is_free(sshd, unique_instance)
    state = state_file(sshd, unique_instance)
    InstanceState.from_json(state.read_text(), str(state))
    for service in ("a", "b", "c"):
        assert running(f"{unique_instance}.{service}"), service
    converged(deployer_cli, unique_instance, deployed["two"], "two")


def _waiting_script(sshd, holder):
    """The host script of a second deploy, waiting for the lock (running `flock -w 1`)."""
    table = all_processes()
    for pid in remote_scripts(sshd):
        if pid != holder and any(table.get(p, (0, [""]))[1][:1] == ["flock"] for p in descendants(pid, table)):
            return pid
    return None


def test_a_connection_dropped_while_waiting_for_the_lock_leaves_nothing_waiting_to_deploy_later(
    deployer_cli, deployed, unique_instance, sshd
):
    first = start_cli(sshd, "deploy", deployed["two"], "--instance", unique_instance)
    wait_for(lambda: exists(f"{unique_instance}.a.r1") or first.poll() is not None, what="a being replaced")
    assert first.poll() is None, finish(first)
    (holder,) = remote_scripts(sshd)
    three = write_template(deployed["two"].parent, _template("three"), "three.yaml")
    second = start_cli(sshd, "deploy", three, "--instance", unique_instance, "--lock-wait", 120)
    waiter = wait_for(lambda: _waiting_script(sshd, holder), what="the second deploy waiting for the lock")

    os.kill(all_processes()[waiter][0], signal.SIGKILL)  # its sshd session: the connection drops

    wait_for(lambda: not alive(waiter), timeout=10, what="the waiting host script to end")
    assert alive(holder), "the waiter only ended once the first deploy was done"
    code, _, err = finish(second)
    assert code == 1 and "Traceback" not in err, err
    code, _, err = finish(first)
    assert code == 0, err
    assert all(env_of(f"{unique_instance}.{s}")["ROUND"] == "two" for s in "abc")
    assert InstanceState.from_json(state_file(sshd, unique_instance).read_text(), "state.json").release == 2
    assert lock_is_free(sshd, unique_instance)


def test_a_client_killed_mid_deploy_in_local_mode_leaves_no_lock_and_the_next_deploy_converges(
    deployer_cli, deployed, unique_instance, sshd
):
    """Without -H the host script is the client's own child (or the daemon's child's, which
    the daemon kills with the client): SIGKILL orphans it."""
    client = start_local_cli(sshd, "deploy", deployed["two"], "--instance", unique_instance)
    wait_for(lambda: exists(f"{unique_instance}.a.r1") or client.poll() is not None, what="a being replaced")
    assert client.poll() is None, finish(client)
    table = all_processes()
    scripts = [p for p in command_processes(client.pid, table) if table[p][1][:2] == ["sh", "-s"]]
    assert scripts

    client.send_signal(signal.SIGKILL)
    finish(client)

    for script in scripts:
        wait_for(lambda: not alive(script), timeout=60, what="the orphaned script to finish")
    assert lock_is_free(sshd, unique_instance)
    assert running(f"{unique_instance}.b") and running(f"{unique_instance}.c")
    converged(deployer_cli, unique_instance, deployed["two"], "two")
