"""Ctrl-C and Ctrl-Z as a terminal sends them (to the command's whole process group), with
and without the daemon: in local mode a deploy interrupted while its plan is applied
finishes the plan on this machine, as a host does over SSH; Ctrl-Z stops every process
the command started, and fg lets them go on."""

import os
import signal

import pytest
from conftest import start_local
from support import (all_processes, daemons, descendants, docker, env_of, finish, inspect, stopped, through,
                     wait_for)

SLOW_TO_START = """\
app:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 1; done'
  env: {ROUND: %s}
"""


@pytest.fixture(params=["without the daemon", "through the daemon"])
def env(request, runtime):
    return {"DEPLOYER_DAEMON": "0"} if request.param == "without the daemon" else through(runtime)


def command_processes(client, runtime):
    """The client's processes and those of the command it hands to the daemon, if any."""
    table = all_processes()
    return descendants(client.pid, table) + [p for d in daemons(runtime) for p in descendants(d, table)]


def exists(container):
    return docker("inspect", "--format", "{{.Id}}", container).returncode == 0


def test_ctrl_c_while_a_local_deploy_applies_its_plan_lets_the_plan_finish_and_be_recorded(
    deployer_cli, sshd, env, runtime, unique_instance, tmp_path
):
    (tmp_path / "one.yaml").write_text(SLOW_TO_START % "one")
    (tmp_path / "two.yaml").write_text(SLOW_TO_START % "two")
    deployer_cli("deploy", tmp_path / "one.yaml", "--instance", unique_instance, host=False, env=env, check=True)
    # the new container must keep running 3 s before the old one goes: the plan takes that long
    client = start_local(sshd, {**env, "FABRIC_DEPLOYER_MIN_UPTIME": "3"},
                         "deploy", tmp_path / "two.yaml", "--instance", unique_instance)
    wait_for(lambda: exists(f"{unique_instance}.app.next") or client.poll() is not None, "the plan being applied")
    assert client.poll() is None, finish(client)

    os.killpg(client.pid, signal.SIGINT)  # Ctrl-C
    code, out, err = finish(client)

    assert code == 130 and "Traceback" not in err, err
    assert err.startswith("error: interrupted: a deploy whose plan had reached its host runs to its end there"), err
    wait_for(lambda: not exists(f"{unique_instance}.app.next"), "the plan to finish", timeout=60)
    assert env_of(f"{unique_instance}.app")["ROUND"] == "two"
    assert inspect(f"{unique_instance}.app", "{{.State.Running}}") == "true"
    assert exists(f"{unique_instance}.app.r1")  # the old one, kept for rollback
    history = deployer_cli("history", unique_instance, host=False, env=env, check=True).stdout
    assert [line.split()[0] for line in history.splitlines()[1:]] == ["1", "2"], history
    status = deployer_cli("status", unique_instance, host=False, env=env, check=True).stdout
    assert f"{unique_instance} on local: release 2" in status and "differs" not in status, status


def test_ctrl_z_stops_every_process_of_a_command_and_fg_lets_them_go_on(
    deployer_cli, sshd, env, runtime, unique_instance, app
):
    deployer_cli("deploy", app, "--instance", unique_instance, host=False, env=env, check=True)
    client = start_local(sshd, env, "logs", unique_instance, "--service", "worker", "--follow")
    (docker,) = wait_for(lambda: [p for p in command_processes(client, runtime)
                                  if all_processes().get(p, (0, [""]))[1][:2] == ["docker", "logs"]],
                         "the command's `docker logs`")
    processes = [client.pid, *command_processes(client, runtime)]

    os.killpg(client.pid, signal.SIGTSTP)  # Ctrl-Z

    wait_for(lambda: all(stopped(p) for p in processes), "every process of the command to stop")
    os.killpg(client.pid, signal.SIGCONT)  # fg
    wait_for(lambda: not any(stopped(p) for p in processes), "every process of the command to go on")
    os.killpg(client.pid, signal.SIGINT)  # Ctrl-C
    code, out, err = finish(client)
    assert code == 130 and "Traceback" not in err, (code, err)
    wait_for(lambda: docker not in all_processes(), "`docker logs` to end with the command")
