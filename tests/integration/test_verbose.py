"""Output for people: -v shows each command the host runs (never a secret, never a file's
content); on a terminal each service's row shows as its step is done, in colour; waits
for another deploy's lock or a container's health show how long they have lasted."""

import fcntl
import json
import os
import re
import shlex
import threading

from support import APP, env_of, on_terminal

SECRETS = {
    "QUOTES": "it's \"quoted\" '\"'\"'",
    "SPACES": "  two  spaces  ",
    "DOLLAR": "$(touch /tmp/pwned) `id` ${HOME}",
    "LINES": "first line\nsecond line\\n",
    "PLAIN": "s3cr3t-plain-value",
}
ESCAPE = "\x1b"


def test_verbose_shows_each_docker_command_and_never_a_secret_nor_a_files_content(
    deployer_cli, app, unique_instance, sshd
):
    app.write_text(APP + "  env: {" + ", ".join(f"{name}: {{secret: {name}}}" for name in SECRETS) + "}\n")
    quiet = deployer_cli("deploy", app, "--instance", unique_instance, env=SECRETS, check=True)
    outputs = [
        deployer_cli("-v", "deploy", app, "--instance", unique_instance, "--force", env=SECRETS, check=True),
        deployer_cli("-v", "redeploy", unique_instance, "--force", check=True),  # the secrets stored on the host
        deployer_cli("-v", "rollback", unique_instance, check=True),
        deployer_cli("-v", "status", unique_instance, check=True),
        deployer_cli("-v", "run", unique_instance, "worker", "--", "true", check=True),
    ]

    assert {k: v for k, v in env_of(f"{unique_instance}.worker").items() if k in SECRETS} == SECRETS
    assert "$ " not in quiet.stdout + quiet.stderr  # without -v, no command is shown
    shown = outputs[0].stderr
    host = f"{sshd.target}: $ "
    assert f"{host}docker run " in shown and f" --name {unique_instance}.worker.next " in shown
    # secrets reach docker in an env file, out of its arguments (the host's process list);
    # one with a line break cannot, and goes as -e (masked here)
    assert " --env-file /dev/fd/5 " in shown and "-e 'LINES=***' " in shown and "-e TZ=UTC " in shown
    assert all(f"{name}=" not in shown for name in SECRETS if name != "LINES")
    state = sshd.state_dir / "instances" / unique_instance / "state.json"
    assert re.search(rf"^{re.escape(host)}put {re.escape(str(state))} \(\d+ bytes\)$", shown, re.M)
    assert re.search(rf"^{re.escape(host)}append {re.escape(str(state.parent))}/history.jsonl \(\d+ bytes\)$", shown, re.M)
    assert all(line.startswith(host) for line in shown.splitlines()), shown
    assert f"{host}docker inspect " in outputs[3].stderr
    one_off = outputs[4].stderr  # run, through Fabric's own run(): shown too, and its env file written
    assert f"{host}docker run --rm --label deployer.one-off={unique_instance} " in one_off
    assert " --env-file /dev/fd/5 " in one_off and "-e 'LINES=***' " in one_off
    assert re.search(rf"^{re.escape(host)}put {re.escape(str(state.parent))}/run\.[0-9a-f]+\.env \(\d+ bytes\)$", one_off, re.M)
    state_text = state.read_text()
    for result in outputs:
        seen = result.stdout + result.stderr
        assert '"release"' not in seen and state_text[:40] not in seen  # no state, history or template
        for secret in SECRETS.values():
            for form in (secret, shlex.quote(secret), json.dumps(secret)[1:-1], secret.replace("\n", "\\n")):
                assert form not in seen, (form, seen)
        for line in secret_lines():
            assert line not in seen
    assert not os.path.exists("/tmp/pwned")


def secret_lines():
    """Each line of a secret, long enough to mean something (a newline splits a value)."""
    return [line.strip() for secret in SECRETS.values() for line in secret.splitlines() if len(line.strip()) > 5]


def test_plain_fab_is_verbose_with_the_setting(fab_cli, app, unique_instance):
    result = fab_cli("deploy", app, "--instance", unique_instance, env={"FABRIC_DEPLOYER_VERBOSE": "1"}, check=True)

    assert f"$ docker run --label deployer.release=1 -d --name {unique_instance}.web " in result.stderr


# "a" turns healthy after about 3 s; "b" runs at once: live rows come in the order steps end
HEALTHY_LATE = """\
a:
  image: local/busybox
  cmd: sh -c 'sleep 3; touch /tmp/ready; exec sleep 3600'
  healthcheck: {cmd: test -f /tmp/ready, interval: 1s, start_period: 30s}
b:
  image: local/busybox
  cmd: sh -c 'exec sleep 3600'
"""


def test_on_a_terminal_rows_show_as_steps_end_in_colour_and_a_health_wait_counts(sshd, tmp_path, unique_instance):
    template = tmp_path / "late.yaml"
    template.write_text(HEALTHY_LATE)

    code, screen = on_terminal(sshd, "deploy", template, "--instance", unique_instance)

    assert code == 0, screen
    rows = [line for line in screen.splitlines() if line.startswith(f"{ESCAPE}[32mcreate")]
    assert [row.split()[1] for row in rows] == ["b", "a"], screen  # b was done first, a waited
    assert f"\r{sshd.target}: waiting for {unique_instance}.a to be healthy 2 s" in screen
    assert f"deployed {unique_instance} on {sshd.target}: release 1, 2 services changed" in screen
    assert screen.count("ACTION") == 1  # the rows, then no second table

    again, plain = on_terminal(sshd, "deploy", template, "--instance", unique_instance, env={"NO_COLOR": "1"})
    assert again == 0 and ESCAPE not in plain and re.search(r"^keep +a +unchanged$", plain, re.M), plain


def test_a_pull_is_said_on_a_terminal_as_it_begins(sshd, app, unique_instance):
    code, screen = on_terminal(sshd, "deploy", app, "--instance", unique_instance, "--pull")

    assert code == 1, screen  # no registry here: the pull fails, after saying it began
    assert screen.index(f"{sshd.target}: pulling local/busybox\n") < screen.index("cannot pull local/busybox")


def test_without_a_terminal_the_output_is_the_table_at_the_end_without_escape_codes(
    deployer_cli, tmp_path, unique_instance, sshd
):
    template = tmp_path / "late.yaml"
    template.write_text(HEALTHY_LATE)

    result = deployer_cli("deploy", template, "--instance", unique_instance, check=True)

    assert ESCAPE not in result.stdout + result.stderr
    assert [line.split()[:2] for line in result.stdout.splitlines()[1:3]] == [["create", "a"], ["create", "b"]]
    assert result.stderr == f"{sshd.target}: waiting for {unique_instance}.a to be healthy\n"


def test_a_deploy_waiting_for_the_lock_says_whose_it_is_and_counts_on_a_terminal(
    deployer_cli, app, unique_instance, sshd
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    holder = "ann@elsewhere since 2024-05-01T10:00:00Z"
    waiting = f"{sshd.target}: waiting for the lock of instance {unique_instance} (held by {holder})"

    lock = hold_lock(sshd.state_dir / "instances" / unique_instance, holder)
    try:
        refused = deployer_cli("deploy", app, "--instance", unique_instance, "--force", "--lock-wait", 2)
        threading.Timer(4, lock.close).start()  # the other deploy ends
        code, screen = on_terminal(sshd, "deploy", app, "--instance", unique_instance, "--force")
    finally:
        lock.close()

    assert refused.returncode == 1 and refused.stderr.count(waiting) == 1, refused.stderr
    assert f"locked by {holder} (waited 2 s" in refused.stderr
    assert code == 0 and f"\r{waiting} 0 s" in screen and f"\r{waiting} 1 s" in screen, screen
    assert f"deployed {unique_instance} on {sshd.target}: release 2" in screen


def hold_lock(directory, holder):
    """Hold an instance's lock as another deploy would (flock, and who holds it in lock.info);
    closing the file returned frees it."""
    (directory / "lock.info").write_text(f"{holder}\n")
    lock = open(directory / "lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def test_commands_of_services_started_at_once_never_mix_even_when_long(deployer_cli, tmp_path, unique_instance):
    big = "".join(f"{i:05d} it's a \"long\" $(secret)\n" for i in range(800))  # about 26 KB
    services = [f"s{i}" for i in range(6)]
    template = tmp_path / "many.yaml"
    template.write_text("".join(
        f"{name}:\n  image: local/busybox\n  cmd: sh -c 'exec sleep 3600'\n  env: {{BIG: {{secret: BIG}}}}\n"
        for name in services
    ))

    result = deployer_cli("-v", "deploy", template, "--instance", unique_instance, env={"BIG": big}, check=True)

    runs = [line for line in result.stderr.splitlines() if " $ docker run " in line]
    assert sorted(line.split(" --name ")[1].split()[0] for line in runs) == [f"{unique_instance}.{s}" for s in services]
    assert all(line.endswith(" -e 'BIG=***' --restart unless-stopped --init local/busybox sh -c 'exec sleep 3600'")
               for line in runs), runs
    assert "it's a" not in result.stderr and "00001" not in result.stderr
