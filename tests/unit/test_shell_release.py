"""Release commands (``dpl_release``, sh/replace.sh): a one-off container of a service's new
spec before its first container is replaced, against the stub docker. Its output reaches
the client line by line as it comes; its exit code and seconds reach the history; a
failing one stops the plan before its service, saying its exit code and last lines."""

import json

from deployer.remote.scripts import call
from plans import CASES, deploy_turns

LINES = "".join(f"migrating {n}\n" for n in range(1, 13))


def history(shell):
    return [json.loads(line) for line in (shell.instance_dir / "history.jsonl").read_text().splitlines()]


def test_a_release_command_runs_before_its_services_step_and_the_history_records_it(shell):
    _, done, error = deploy_turns(shell, CASES["release"])

    assert (done, error) == ({"web", "worker"}, None)
    runs = [line for line in shell.docker.log() if line.startswith("run ")]
    assert runs == ["run one-off --all", "run c1.web.next", "run one-off warm", "run c1.worker"]  # db did not change
    (entry,) = history(shell)
    assert [(r["service"], r["exit_code"]) for r in entry["releases"]] == [("web", 0), ("worker", 0)]
    assert all(isinstance(r["seconds"], float) for r in entry["releases"])


def test_a_release_gets_the_secrets_in_an_env_file_never_in_its_arguments(shell):
    deploy_turns(shell, CASES["release"])

    (release,) = [c for c in shell.docker.calls() if c[-1] == "warm"]
    assert "--env-file" in release and not any("pw" == a.split("=")[-1] for a in release)


def test_a_failing_release_replaces_nothing_of_its_service_and_says_its_exit_code_and_last_lines(shell):
    shell.docker.answer("run --cidfile * migrate --all", stdout=LINES, exit=3)

    _, done, error = deploy_turns(shell, CASES["release"])

    assert done == set()
    assert error.message == "the release command of web failed (exit code 3): none of its containers was replaced"
    assert error.details == [f"migrating {n}" for n in range(3, 13)]
    assert "run c1.web.next" not in shell.docker.log() and not (shell.instance_dir / "history.jsonl").exists()


def test_each_line_reaches_the_client_as_it_comes_and_the_end_is_marked(shell):
    shell.docker.answer("run --cidfile *", stdout="one\ntwo, no newline")
    hostile = ["sh", "-c", "echo $(id) 'it''s' \"$HOME\"; `x`"]

    ran = shell.run(call("dpl_release", "web", 600, "--rm", "team/app", *hostile))

    assert ran.exited == 0
    assert ran.marks("release") == [("web", "one"), ("web", "two, no newline")]
    ((service, code, *stamps),) = ran.marks("released")
    assert (service, code, len(stamps)) == ("web", "0", 2)
    (release,) = shell.docker.calls()
    assert release[:2] == ("run", "--cidfile") and release[3:] == ("--rm", "team/app", *hostile)


def test_a_release_joining_another_instances_network_is_created_joined_then_started_attached(shell):
    shell.instance_dir.mkdir(parents=True)  # (a deploy's made it: the container's id is kept there)

    ran = shell.run(call("dpl_release", "web", 600, "--dpl-join", "deployer-shop.db=", "--rm", "team/app", "migrate"))

    assert ran.exited == 0 and ran.marks("released")[0][:2] == ("web", "0")
    assert shell.docker.log() == [
        "create one-off migrate", "network connect deployer-shop.db new1", "start -a new1"]


def test_a_release_that_cannot_join_its_network_runs_nothing_and_says_so(shell):
    shell.instance_dir.mkdir(parents=True)
    shell.docker.fail("network connect *", stderr="Error response from daemon: network deployer-shop.db not found\n")

    ran = shell.run(call("dpl_release", "web", 600, "--dpl-join", "deployer-shop.db=", "--rm", "team/app", "migrate"))

    assert ran.exited == 1 and "the release command of web could not start" in ran.stderr
    assert "start -a new1" not in shell.docker.log() and shell.docker.containers() == {}
