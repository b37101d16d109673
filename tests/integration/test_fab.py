"""Plain `fab`, the real executable, as a user runs it: the classic `task:arg,key=value`
form and a command after `--`, from this repository's fabfile and from a user's own
fabfile in another directory (deployer/classic.py); its task list and help."""

import re

import pytest
from support import inspect

from deployer.tasks import ns

# printf shows each word it was given in brackets: spaces, quotes and $(...) arrive intact
WORDS = ["two words", "it's", 'say "hi"', "$(touch /tmp/deployer-pwned)", ""]
SHOWN = "".join(f"[{word}]\n" for word in WORDS)


USERS_TASK = """\
@task
def greet(c, name, loud=False):
    print('hello', name + ('!' if loud else ''), 'from', c.host)
"""
FABFILES = {
    # deployer's tasks imported flat beside the user's own
    "": "from fabric import task\nfrom deployer.tasks import *  # deploy, run, exec, ...\n\n\n" + USERS_TASK,
    # deployer's collection added under the prefix `deployer.`
    "deployer.": ("from invoke import Collection\nfrom fabric import task\nimport deployer.tasks\n\n\n" + USERS_TASK
                  + "\n\nns = Collection(greet)\nns.add_collection(deployer.tasks.ns, 'deployer')\n"),
}


def users_fabfile(directory, sshd, prefix=""):
    """A user's project: a fabfile with deployer's tasks under ``prefix`` and a task of its
    own, and a fabric.yaml (tasks imported flat take their settings from it alone)."""
    directory.mkdir(exist_ok=True)
    (directory / "fabric.yaml").write_text(f"deployer:\n  known_hosts: {sshd.known_hosts}\n")
    (directory / "fabfile.py").write_text(FABFILES[prefix])
    return directory


def test_plain_fab_deploys_in_the_classic_form_and_runs_a_quoted_command_after_the_double_dash(
    fab, app, unique_instance, sshd
):
    result = fab(f"deploy:{app},instance={unique_instance}", check=True)

    assert f"deployed {unique_instance} on {sshd.target}: release 1" in result.stdout
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"

    result = fab("run", unique_instance, "web", "--", "sh", "-c", "echo a b; exit 3")

    assert (result.returncode, result.stdout, result.stderr) == (3, "a b\n", "")

    result = fab("exec", unique_instance, "web", "--", "sh", "-c", "echo a b; exit 4")

    assert (result.returncode, result.stdout, result.stderr) == (4, "a b\n", "")


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_words_after_the_double_dash_reach_the_container_as_the_user_quoted_them(
    fab, app, unique_instance, tmp_path, verb
):
    fab("deploy", app, "--instance", unique_instance, check=True)
    canary = tmp_path / "ran-on-the-host"

    result = fab(verb, unique_instance, "web", "--", "sh", "-c", f'printf "[%s]\\n" "$@"; touch {canary}; exit 7',
                 "sh", *WORDS)

    assert (result.returncode, result.stdout) == (7, SHOWN), result.stderr
    assert not canary.exists()  # inside the container, not on the host (Fabric's own meaning of --)


@pytest.mark.parametrize("prefix", ["", "deployer."], ids=["tasks imported", "collection added"])
def test_a_users_fabfile_with_deployers_tasks_takes_the_classic_form_and_the_double_dash_for_all_its_tasks(
    fab, app, unique_instance, tmp_path, sshd, prefix
):
    users = users_fabfile(tmp_path / "project", sshd, prefix)

    result = fab("greet:world,loud=yes", f"{prefix}deploy:{app},{unique_instance}", cwd=users, check=True)

    assert result.stdout.startswith("hello world! from 127.0.0.1\n")
    assert f"deployed {unique_instance} on {sshd.target}: release 1" in result.stdout
    result = fab("greet", "--name", "again", f"{prefix}status", unique_instance, cwd=users, check=True)
    assert result.stdout.startswith("hello again from 127.0.0.1\n") and "release 1" in result.stdout

    for verb in ("run", "exec"):
        result = fab(f"{prefix}{verb}", unique_instance, "web", "--", "sh", "-c", "echo a b; exit 3", cwd=users)

        assert (result.returncode, result.stdout, result.stderr) == (3, "a b\n", ""), verb


def test_a_classic_call_the_task_cannot_take_is_one_error_line_and_exit_2(fab, tmp_path):
    result = fab("destroy:c1,volumes=maybe")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("error: 'destroy:c1,volumes=maybe': volumes is true or false "
                             "(true/false, yes/no, 1/0), got 'maybe'\n")


def test_fab_lists_every_deployer_task_with_its_one_line_help_and_shows_a_tasks_flags(fab, tmp_path, sshd):
    users = users_fabfile(tmp_path, sshd)

    listing = fab("--list", host=False, cwd=users, check=True).stdout
    flags = fab("--help", "deploy", host=False, cwd=users, check=True).stdout

    # a terminal-less run is 80 columns wide: invoke wraps a long line, never cuts it
    lines = {" ".join(entry.split()) for entry in re.split(r"\n  (?=\S)", listing) if entry.strip()}
    for expected in [
        "deploy Deploy a template to the host as an instance; only services that changed are recreated.",
        "prune Remove the instance's retained (stopped, replaced) containers and its unused built images.",
        "run Run a one-off container of a service (its image, env, volumes); exit code passes through.",
        "validate Check a template without any host (for CI): exits 2 with the first error.",
        "greet",
    ]:
        assert expected in lines, listing
    assert len(lines) == 1 + len(ns.task_names) + 1  # "Available tasks:", deployer's tasks, the user's own
    for flag in ["--instance=STRING    the instance's name, e.g. staging", "--dry-run", "--force", "--pull",
                 "--lock-wait=STRING", "--var", "--vars=STRING", "--secrets=STRING", "--json", "--dirty"]:
        assert flag in flags


def test_plain_fab_prints_a_tasks_help_after_its_name_and_runs_nothing(fab):
    shown = fab("deploy", "--help", host=False, check=True)

    assert "deploy [--options]" in shown.stdout and "--dry-run" in shown.stdout
    assert "needs the instance" not in shown.stderr
