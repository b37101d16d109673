"""The daemon (deployer/daemon.py): a command it runs behaves as the command would alone,
with its own environment, directory and signals; a daemon of changed code is replaced;
DEPLOYER_DAEMON=0 and a directory others can enter mean no daemon. Each test has its own
socket directory (XDG_RUNTIME_DIR), so its own daemon, killed at the end."""

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _command, _local_env
from harness.poll import wait_for
from harness.processes import alive, all_processes, daemons, descendants, kill_daemons
from support import APP, env_of, finish, on_terminal

TEMPLATE = """\
app:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 3600; done'
  env: {TOKEN: {secret: TOKEN}}
"""


@pytest.fixture
def runtime(tmp_path):
    """A socket directory of the test's own; its daemons, and any command they still run
    (a failed test's), are killed at the end."""
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    yield directory
    kill_daemons(directory)


def served(runtime):
    """The one daemon of the directory, once its socket accepts commands."""
    wait_for(lambda: list(runtime.glob("deployer/*.sock")), "the daemon's socket")
    (pid,) = daemons(runtime)
    return pid


def start_local(sshd, runtime, *args):
    """`python -m deployer ARGS` in local mode, in the background, as a shell's job: a process
    group of its own (which Ctrl-Z can stop)."""
    cmd, env = _command("deployer", sshd, _local_env(sshd), args, False, {"XDG_RUNTIME_DIR": str(runtime)})
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            process_group=0)


def waiting_for_the_lock(sshd, runtime, instance, template):
    """A deploy waiting for the instance's lock (held by the caller), and its host script."""
    client = start_local(sshd, runtime, "deploy", template, "--instance", instance, "--force", "--lock-wait", 600)

    def script():
        table = all_processes()
        return [p for p in descendants(served(runtime), table) if table[p][1][:2] == ["sh", "-s"]]

    (found,) = wait_for(script, "the deploy's script, waiting for the lock")
    return client, found


@contextlib.contextmanager
def a_command_waiting(deployer_cli, sshd, runtime, instance, tmp_path):
    """An instance deployed, its daemon, and a second deploy through it waiting for the
    instance's lock, held as another deploy would until the block ends: (daemon, client,
    the daemon's child running the command, its host script)."""
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    env = {"XDG_RUNTIME_DIR": str(runtime), "TOKEN": "x"}
    deployer_cli("deploy", tmp_path / "t.yaml", "--instance", instance, host=False, env=env, check=True)
    daemon = served(runtime)
    with open(sshd.state_dir / "instances" / instance / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        client, script = waiting_for_the_lock(sshd, runtime, instance, tmp_path / "t.yaml")
        (child,) = [p for p, (ppid, _) in all_processes().items() if ppid == daemon]
        yield daemon, client, child, script


def test_the_daemon_runs_a_command_with_its_environment_directory_and_signals(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    (tmp_path / "sub").mkdir()
    env = {"XDG_RUNTIME_DIR": str(runtime), "TOKEN": "first-s3cr3t"}
    deployer_cli("deploy", "t.yaml", "--instance", unique_instance, host=False, cwd=tmp_path, env=env, check=True)
    daemon = served(runtime)  # started by the first command, which ran on its own
    assert b"first-s3cr3t" not in Path(f"/proc/{daemon}/environ").read_bytes()  # no command's secrets

    env["TOKEN"] = hostile = "second $(touch /tmp/pwned) 'q\" \u00e9 \\"
    deployer_cli("deploy", "../t.yaml", "--instance", unique_instance, host=False, cwd=tmp_path / "sub",
                 env=env, check=True)
    assert env_of(f"{unique_instance}.app")["TOKEN"] == hostile

    with open(sshd.state_dir / "instances" / unique_instance / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another deploy would
        client, script = waiting_for_the_lock(sshd, runtime, unique_instance, tmp_path / "t.yaml")
        assert descendants(client.pid) == []  # the daemon's child does the work, not the client
        client.send_signal(signal.SIGINT)  # Ctrl-C reaches the command
        code, out, err = finish(client)
        assert code == 130, err
        assert "error: interrupted:" in err and "Traceback" not in err
        wait_for(lambda: not alive(script), "the waiting script to end")
    assert daemons(runtime) == [daemon]  # there for the next command


def test_a_command_through_the_daemon_has_the_users_terminal(sshd, runtime, unique_instance, tmp_path):
    (tmp_path / "app.yaml").write_text(APP)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    code, screen = on_terminal(sshd, "deploy", tmp_path / "app.yaml", "--instance", unique_instance, env=env)
    assert code == 0, screen
    served(runtime)

    code, screen = on_terminal(sshd, "deploy", tmp_path / "app.yaml", "--instance", unique_instance, "--force", env=env)

    assert code == 0, screen
    rows = [line for line in screen.splitlines() if line.startswith("\x1b[32mrecreate")]  # live rows, in colour
    assert sorted(row.split()[1] for row in rows) == ["web", "worker"], screen
    assert f"deployed {unique_instance} on {sshd.target}: release 2" in screen


def stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def test_ctrl_z_stops_the_command_with_its_client_and_fg_goes_on(deployer_cli, sshd, runtime, unique_instance, tmp_path):
    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path) as (_, client, child, _):
        client.send_signal(signal.SIGTSTP)  # Ctrl-Z
        wait_for(lambda: stopped(client.pid) and stopped(child), "the client and its command to stop")
        client.send_signal(signal.SIGCONT)  # fg
        wait_for(lambda: not stopped(client.pid) and not stopped(child), "both to go on")
    code, out, err = finish(client)  # the lock is free

    assert code == 0, err
    assert f"deployed {unique_instance} on local: release 2" in out


def test_a_killed_client_takes_its_command_with_it(deployer_cli, sshd, runtime, unique_instance, tmp_path):
    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path) as (daemon, client, child, script):
        client.send_signal(signal.SIGKILL)
        finish(client)

        wait_for(lambda: not alive(child), "the command's process to be killed with its client")
        wait_for(lambda: not alive(script), "the orphaned waiting script to end")  # as without a daemon
    assert daemons(runtime) == [daemon]


def test_a_daemon_killed_under_a_command_leaves_it_to_finish_and_its_client_says_so(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path) as (daemon, client, _, _):
        os.kill(daemon, signal.SIGKILL)
    code, out, err = finish(client)  # the lock is free: the command goes on, and ends

    assert code == 1 and "Traceback" not in err
    assert "error: the deployer daemon went away: how the command ended is unknown" in err
    history = deployer_cli("history", unique_instance, host=False, env={"XDG_RUNTIME_DIR": str(runtime)},
                           check=True).stdout
    assert [line.split()[0] for line in history.splitlines()[1:]] == ["1", "2"]  # the deploy was done


def test_a_daemon_of_changed_code_gives_way_to_one_of_the_new_code(tmp_path, runtime, sshd, deployer_cli):
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "deployer", source / "deployer", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"XDG_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(source)}

    def version():
        return deployer_cli("--version", host=False, cwd=tmp_path, env=env, check=True).stdout.splitlines()[0]

    assert version() == "deployer 0.1.0"
    old = served(runtime)
    assert version() == "deployer 0.1.0"
    init = source / "deployer" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.0+changed"'))

    assert version() == "deployer 0.1.0+changed"  # the old daemon declined the command, and ended
    wait_for(lambda: not alive(old), "the old daemon to end")
    new = wait_for(lambda: [p for p in daemons(runtime) if p != old], "a daemon of the new code")
    served(runtime)
    assert version() == "deployer 0.1.0+changed"
    assert daemons(runtime) == new


@pytest.mark.parametrize("case", ["DEPLOYER_DAEMON=0", "a socket directory others can enter"])
def test_without_a_daemon_a_command_runs_on_its_own(case, runtime, sshd, deployer_cli):
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    if case == "DEPLOYER_DAEMON=0":
        env["DEPLOYER_DAEMON"] = "0"
    else:
        (runtime / "deployer").mkdir(mode=0o700)
        (runtime / "deployer").chmod(0o777)
    for _ in range(2):
        result = deployer_cli("--version", host=False, env=env, check=True)
        assert result.stdout.startswith("deployer 0.1.0")
    time.sleep(1)  # a daemon would have bound its socket by now
    assert daemons(runtime) == [] and not list(runtime.glob("deployer/*.sock"))


def test_an_idle_daemon_ends_after_DEPLOYER_DAEMON_seconds(runtime, sshd, deployer_cli):
    env = {"XDG_RUNTIME_DIR": str(runtime), "DEPLOYER_DAEMON": "1"}
    deployer_cli("--version", host=False, env=env, check=True)
    daemon = served(runtime)
    deployer_cli("--version", host=False, env=env, check=True)
    wait_for(lambda: not alive(daemon), "the idle daemon to end", timeout=10)
    assert not list(runtime.glob("deployer/*.sock"))


def test_a_bad_DEPLOYER_DAEMON_is_exit_2_naming_it(runtime, sshd, deployer_cli):
    result = deployer_cli("--version", host=False, env={"XDG_RUNTIME_DIR": str(runtime), "DEPLOYER_DAEMON": "soon"},
                          check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: DEPLOYER_DAEMON (environment): 'soon' is not a number of seconds (0: no daemon)\n"
