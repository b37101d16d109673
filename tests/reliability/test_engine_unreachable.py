"""The Docker engine cannot be reached: before a deploy starts (DOCKER_HOST names a
socket nobody listens on) and in the middle of one (the engine's socket goes away while
a container is being replaced). The task fails with one line saying the engine is
unreachable, the state file is not corrupted, and once the engine is back a deploy
converges. Local mode (no -H), so DOCKER_HOST reaches the deploying shell."""

import json
import os
import socket
import tempfile

import pytest
from faultkit import SLOW_STOP, EngineProxy, container_id, exists, running, start_local_cli, state_file, write_template
from harness.poll import wait_for
from support import env_of, finish

from deployer.model.state import InstanceState

NOWHERE = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def _template(round_):
    service = lambda: json.loads(json.dumps(SLOW_STOP)) | {"env": {"ROUND": round_}}  # noqa: E731
    return {"a": service(), "b": service()}


def _one_line_about_the_engine(result):
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "docker daemon" in lines[0].lower() or "docker engine" in lines[0].lower(), lines[0]


@pytest.mark.parametrize("command", ["deploy", "status", "stop", "destroy"])
def test_an_unreachable_engine_fails_the_task_with_one_line_and_leaves_the_state_alone(
    deployer_cli, unique_instance, tmp_path, sshd, command
):
    one = write_template(tmp_path, {"web": {"image": "local/busybox", "cmd": "sleep 3600"}}, "one.yaml")
    two = write_template(tmp_path, {"web": {"image": "local/busybox", "cmd": "sleep 3601"}}, "two.yaml")
    deployer_cli("deploy", one, "--instance", unique_instance, host=False, check=True)
    before = state_file(sshd, unique_instance).read_bytes()
    web = container_id(f"{unique_instance}.web")
    args = {"deploy": ["deploy", two, "--instance", unique_instance]}.get(command, [command, unique_instance])

    result = deployer_cli(*args, host=False, env=NOWHERE)

    _one_line_about_the_engine(result)
    assert state_file(sshd, unique_instance).read_bytes() == before
    assert container_id(f"{unique_instance}.web") == web and running(f"{unique_instance}.web")


@pytest.fixture
def engine():
    with tempfile.TemporaryDirectory(prefix="eng", dir="/tmp") as directory:  # a short path for the socket
        proxy = EngineProxy(f"{directory}/docker.sock")
        proxy.start()
        yield proxy
        proxy.stop()


def test_an_engine_lost_mid_deploy_fails_cleanly_and_a_deploy_converges_once_it_is_back(
    deployer_cli, unique_instance, tmp_path, sshd, engine
):
    env = {"DOCKER_HOST": engine.url}
    deployer_cli("deploy", write_template(tmp_path, _template("one"), "one.yaml"), "--instance", unique_instance,
                 host=False, env=env, check=True)
    two = write_template(tmp_path, _template("two"), "two.yaml")
    deploy = start_local_cli(sshd, "deploy", two, "--instance", unique_instance, env=env)
    # a's replacement runs; the old a is being stopped (3 s: it ignores SIGTERM)
    wait_for(lambda: exists(f"{unique_instance}.a.r1") or deploy.poll() is not None, what="a being replaced")
    assert deploy.poll() is None, finish(deploy)

    engine.stop()
    code, out, err = finish(deploy)

    assert code == 1, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "docker daemon" in err.lower() or "docker engine" in err.lower(), err
    state = state_file(sshd, unique_instance)
    InstanceState.from_json(state.read_text(), str(state))  # not corrupted
    assert running(f"{unique_instance}.b") and env_of(f"{unique_instance}.b")["ROUND"] == "one"

    engine.start()
    deployer_cli("deploy", two, "--instance", unique_instance, "--lock-wait", 10, host=False, env=env, check=True)

    for service in ("a", "b"):
        assert running(f"{unique_instance}.{service}")
        assert env_of(f"{unique_instance}.{service}")["ROUND"] == "two"
    assert not exists(f"{unique_instance}.a.next")
    again = deployer_cli("deploy", two, "--instance", unique_instance, "--lock-wait", 0, host=False, env=env,
                         check=True)
    assert "is up to date" in again.stdout
    status = deployer_cli("status", unique_instance, host=False, env=env, check=True).stdout
    assert "differs from the state" not in status and "missing" not in status, status


@pytest.mark.parametrize("command", ["deploy", "status"])
def test_a_frozen_engine_ends_the_task_after_the_docker_timeout_and_frees_the_lock(
    deployer_cli, unique_instance, tmp_path, sshd, command
):
    one = write_template(tmp_path, {"web": {"image": "local/busybox", "cmd": "sleep 3600"}}, "one.yaml")
    deployer_cli("deploy", one, "--instance", unique_instance, host=False, check=True)
    frozen = socket.socket(socket.AF_UNIX)  # takes connections, never answers: a dockerd stopped with SIGSTOP
    path = tempfile.mktemp(prefix="frozen", suffix=".sock", dir="/tmp")
    frozen.bind(path)
    frozen.listen(64)
    try:
        args = {"deploy": ("deploy", one, "--instance", unique_instance), "status": ("status", unique_instance)}[command]
        result = deployer_cli(*args, host=False, env={"DOCKER_HOST": f"unix://{path}",
                                                       "FABRIC_DEPLOYER_DOCKER_TIMEOUT": "2"})
    finally:
        frozen.close()
        os.unlink(path)

    assert result.returncode == 1, result
    assert "the Docker engine did not answer within 2 s" in result.stderr and "frozen" in result.stderr
    assert "Traceback" not in result.stderr
    deployer_cli("deploy", one, "--instance", unique_instance, "--lock-wait", "0", host=False, check=True)
