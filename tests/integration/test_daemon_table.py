"""The whole CLI (README's "Using it") through one daemon: every command says and exits
what it does without one (the rest of the suite runs them without: tests/conftest.py)."""

import re

from support import children_time, served, through


def table(instance, app, target):
    """(arguments, host?, exit code, what its output holds), in an order that makes sense."""
    on = f"{instance} on {target}"
    return [
        (["validate", app], False, 0, f"{app}: ok (2 services: web, worker)"),
        (["deploy", app, "--instance", instance], True, 0, f"deployed {on}: release 1, 2 services changed"),
        ([f"deploy:{app},instance={instance},dry_run=yes"], True, 0, f"dry run: 0 of 2 services would change on {on}"),
        (["deploy", app, "--instance", instance, "--force"], True, 0, f"deployed {on}: release 2, 2 services changed"),
        (["redeploy", instance], True, 0, f"{on} is up to date (release 2); nothing was changed"),
        (["history", instance], True, 0, "web recreate: forced (--force)"),
        (["rollback", instance], True, 0, f"{on} is up to date (release 2)"),
        (["list"], True, 0, f"\n{instance}  "),
        (["status", instance], True, 0, f"{on}: release 2"),
        (["logs", instance, "--tail", "1"], True, 0, ""),
        (["stop", instance, "--service", "worker"], True, 0, f"stop: {instance}.worker on {target}"),
        ([f"start:{instance},worker"], True, 0, f"start: {instance}.worker on {target}"),
        (["restart", instance], True, 0, f"restart: {instance}.web, {instance}.worker on {target}"),
        (["run", instance, "web", "--", "sh", "-c", "echo a b; exit 3"], True, 3, "a b\n"),
        (["exec", instance, "web", "--", "sh", "-c", 'echo "$GREETING"; exit 4'], True, 4, "hello\n"),
        (["endpoints", instance], True, 0, f"{on} registers no endpoints"),
        (["prune", instance], True, 0, f"pruned 2 retained containers of {instance} on {target}"),
        (["status", "nosuch"], True, 1, "error: host " + target + ": instance nosuch: no such instance on this host"),
        (["destroy", instance], True, 0, f"destroyed {on}: volumes kept"),
        (["deploy", app, "--instance", instance], False, 0, f"deployed {instance} on local: release 1"),
        (["destroy:" + instance + ",volumes=yes"], False, 0, f"destroyed {instance} on local"),
    ]


def test_every_command_of_the_cli_table_runs_through_the_daemon_as_it_does_without(
    deployer_cli, app, unique_instance, sshd, runtime
):
    env = through(runtime)
    deployer_cli("--version", host=False, env=env, check=True)  # runs on its own, starts the daemon
    daemon = served(runtime)

    for args, host, code, shown in table(unique_instance, app, sshd.target):
        before = children_time(daemon)
        result = deployer_cli(*args, host=host, env=env)

        # the work was done by the daemon's child (validate's alone may take less than a clock tick)
        assert children_time(daemon) > before or args[0] == "validate", args
        said = result.stdout + result.stderr
        assert (result.returncode, shown in said) == (code, True), (args, said)
        assert "Traceback" not in said
        assert not re.search(r"\berror\b", said) or code == 1, (args, said)

    assert served(runtime) == daemon  # one daemon ran them all: none ended, none was started
