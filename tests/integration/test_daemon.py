"""The daemon (deployer/cli/daemon.py, client.py): a command it runs behaves as the command
would alone, with its own environment, directory, signals and what its process inherits;
it serves its own user only, and no client stalls another's command; a daemon of changed
code is replaced; DEPLOYER_DAEMON=0 and a directory others can enter mean no daemon. Each
test has its own socket directory (XDG_RUNTIME_DIR), so its own daemon, killed at the end.
Ctrl-C and Ctrl-Z with and without it: test_ctrl_c.py; the whole CLI through it:
test_daemon_table.py."""

import contextlib
import fcntl
import json
import os
import re
import resource
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, start_local
from harness.processes import alive, all_processes, daemons, descendants
from support import APP, env_of, finish, on_terminal, served, stopped, through, wait_for

from deployer.cli import client
from deployer.cli.daemon import REQUEST_TIMEOUT

TEMPLATE = """\
app:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 3600; done'
  env: {TOKEN: {secret: TOKEN}}
"""


def waiting_for_the_lock(sshd, runtime, instance, template, **popen):
    """A deploy waiting for the instance's lock (held by the caller), and its host script
    (the client's, or the daemon's child's: whichever runs the command)."""
    client = start_local(sshd, through(runtime), "deploy", template, "--instance", instance, "--force",
                         "--lock-wait", 600, **popen)

    def script():
        table = all_processes()
        ours = descendants(client.pid, table) + [p for d in daemons(runtime) for p in descendants(d, table)]
        return [p for p in ours if table[p][1][:2] == ["sh", "-s"]]

    (found,) = wait_for(script, "the deploy's script, waiting for the lock")
    return client, found


@contextlib.contextmanager
def a_command_waiting(deployer_cli, sshd, runtime, instance, tmp_path, then=None, **popen):
    """An instance deployed, its daemon, and a second deploy (its client started with
    ``popen``) waiting for the instance's lock, held as another deploy would until the block
    ends: (daemon, client, the daemon's child running the command or None, its host
    script). ``then(daemon)``: done before the second deploy starts."""
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    env = {**through(runtime), "TOKEN": "x"}
    deployer_cli("deploy", tmp_path / "t.yaml", "--instance", instance, host=False, env=env, check=True)
    daemon = served(runtime)
    if then:
        then(daemon)
    with open(sshd.state_dir / "instances" / instance / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        client, script = waiting_for_the_lock(sshd, runtime, instance, tmp_path / "t.yaml", **popen)
        children = [p for p, (ppid, _) in all_processes().items() if ppid == daemon]
        yield daemon, client, (children[0] if children else None), script


def test_the_daemon_runs_a_command_with_its_environment_directory_and_signals(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    (tmp_path / "sub").mkdir()
    env = {**through(runtime), "TOKEN": "first-s3cr3t"}
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
    env = {**through(runtime)}
    code, screen = on_terminal(sshd, "deploy", tmp_path / "app.yaml", "--instance", unique_instance, env=env)
    assert code == 0, screen
    served(runtime)

    code, screen = on_terminal(sshd, "deploy", tmp_path / "app.yaml", "--instance", unique_instance, "--force", env=env)

    assert code == 0, screen
    rows = [line for line in screen.splitlines() if line.startswith("\x1b[32mrecreate")]  # live rows, in colour
    assert sorted(row.split()[1] for row in rows) == ["web", "worker"], screen
    assert f"deployed {unique_instance} on {sshd.target}: release 2" in screen


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
    history = deployer_cli("history", unique_instance, host=False, env={**through(runtime)},
                           check=True).stdout
    assert [line.split()[0] for line in history.splitlines()[1:]] == ["1", "2"]  # the deploy was done


def test_a_daemon_of_changed_code_gives_way_to_one_of_the_new_code(tmp_path, runtime, sshd, deployer_cli):
    source = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "deployer", source / "deployer", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**through(runtime), "PYTHONPATH": str(source)}

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
    env = {**through(runtime)}
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
    env = {**through(runtime), "DEPLOYER_DAEMON": "1"}
    deployer_cli("--version", host=False, env=env, check=True)
    daemon = served(runtime)
    deployer_cli("--version", host=False, env=env, check=True)
    wait_for(lambda: not alive(daemon), "the idle daemon to end", timeout=10)
    assert not list(runtime.glob("deployer/*.sock"))


def test_a_bad_DEPLOYER_DAEMON_is_exit_2_naming_it(runtime, sshd, deployer_cli):
    result = deployer_cli("--version", host=False, env={**through(runtime), "DEPLOYER_DAEMON": "soon"},
                          check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: DEPLOYER_DAEMON (environment): 'soon' is not a number of seconds (0: no daemon)\n"


def talk(path, argv, fds):
    """A command's request, as a client sends it, to the daemon's socket at ``path`` (in the
    working directory: no directory on the way needs opening); what the daemon answers
    until it closes the connection."""
    body = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": str(REPO_ROOT), "path": sys.path,
                       "umask": 0o022, "ignored": [], "inherited": client.inherited()}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        socket.send_fds(conn, [client.HEADER.pack(len(body))], fds)
        with contextlib.suppress(OSError):  # a refused one may be closed before all is sent
            conn.sendall(body)
        return b"".join(iter(lambda: conn.recv(4096), b""))


def as_nobody(function):
    """function()'s bytes, computed in a fork of this process turned into the user nobody."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.write(write, function())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    return said


def test_another_users_connection_to_the_daemons_socket_is_refused(deployer_cli, runtime, monkeypatch):
    deployer_cli("--version", host=False, env=through(runtime), check=True)
    daemon = served(runtime)
    (socket_file,) = runtime.glob("deployer/*.sock")
    # deployer never lets others near its socket; opened up here so that nobody reaches it at all
    socket_file.parent.chmod(0o711)
    socket_file.chmod(0o777)
    monkeypatch.chdir(socket_file.parent)
    read, write = os.pipe()

    answer = as_nobody(lambda: talk(socket_file.name, ["deployer", "--version"], [0, write, write]))

    assert answer == b""  # closed unheard
    assert daemons(runtime) == [daemon] and descendants(daemon) == []  # no command started
    answer = talk(socket_file.name, ["deployer", "--version"], [0, write, write])  # its own user's
    os.close(write)
    assert answer.startswith(b'{"pid": ') and answer.endswith(b'{"exit": 0}\n')
    with os.fdopen(read) as output:
        assert output.read().startswith("deployer 0.1.0\n")


def test_a_client_that_sends_nothing_or_half_a_request_stalls_no_other_command(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    stuck, started = [], []

    def connect_two_stuck_clients(daemon):
        (path,) = runtime.glob("deployer/*.sock")
        silent, halfway = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
        stuck.extend([silent, halfway])
        silent.connect(str(path))
        halfway.connect(str(path))
        socket.send_fds(halfway, [client.HEADER.pack(1000)], [0, 1, 2])
        halfway.sendall(b'{"argv": ')
        started.append(time.monotonic())

    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path, then=connect_two_stuck_clients) as (
        daemon, client_, child, script
    ):
        took = time.monotonic() - started[0]
        assert child is not None and script in descendants(daemon)  # the daemon runs it, while both wait
    for conn in stuck:
        conn.close()
    assert finish(client_)[0] == 0
    assert took < REQUEST_TIMEOUT / 2  # the daemon gives a request up to 10 s, but waits for none


def limited(soft):
    """preexec_fn: open files limited to ``soft``."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.mark.parametrize("differs", ["resource limits", "supplementary groups"])
def test_a_command_whose_process_differs_from_the_daemons_runs_on_its_own_with_what_it_inherits(
    differs, deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1
    change = limited(soft) if differs == "resource limits" else lambda: os.setgroups([65534])

    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path, preexec_fn=change) as (
        daemon, client_, child, script
    ):
        assert child is None and script in descendants(client_.pid)  # the command's own process does the work
        if differs == "resource limits":
            assert re.search(rf"Max open files +{soft} ", Path(f"/proc/{script}/limits").read_text())
        else:
            assert re.search(r"Groups:\s*65534\s*\n", Path(f"/proc/{script}/status").read_text())
    assert finish(client_)[0] == 0
    assert daemon in daemons(runtime)  # the usual commands' daemon serves on


def test_a_daemon_whose_own_process_changed_declines_and_the_command_runs_on_its_own(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = lambda daemon: resource.prlimit(daemon, resource.RLIMIT_NOFILE, (soft - 1, hard))  # noqa: E731

    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path, then=lowered) as (
        daemon, client_, child, script
    ):
        assert child is None and script in descendants(client_.pid)
        assert re.search(rf"Max open files +{soft} ", Path(f"/proc/{script}/limits").read_text())
    assert finish(client_)[0] == 0
    assert daemons(runtime) == [daemon] and alive(daemon)  # declined the command, and serves on


def test_a_command_started_ignoring_hangups_ignores_them_through_the_daemon_too(
    deployer_cli, sshd, runtime, unique_instance, tmp_path
):
    nohup = lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)  # noqa: E731  (as `nohup deployer ...`)

    with a_command_waiting(deployer_cli, sshd, runtime, unique_instance, tmp_path, preexec_fn=nohup) as (
        daemon, client_, child, script
    ):
        assert child is not None
        os.killpg(client_.pid, signal.SIGHUP)  # the terminal goes away
        time.sleep(1)

        assert client_.poll() is None and alive(child) and alive(script)
    code, out, err = finish(client_)
    assert code == 0, err
    assert f"deployed {unique_instance} on local: release 2" in out
