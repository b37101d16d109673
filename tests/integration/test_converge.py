"""Every deploy converges: leftovers of a deploy that was cut off, or of an engine that
restarted, are seen by the next deploy and repaired in its one round trip, saying so."""

import json

from support import APP, docker, inspect


def running(name):
    return inspect(name, "{{.State.Running}}") == "true"


def deployed_twice(deployer_cli, app, instance):
    """web replaced once: web.r1 is retained (stopped)."""
    deployer_cli("deploy", app, "--instance", instance, check=True)
    app.write_text(APP.replace("GREETING: hello", "GREETING: again"))
    deployer_cli("deploy", app, "--instance", instance, check=True)


def test_a_retained_container_found_running_is_stopped_and_said_so(deployer_cli, app, unique_instance):
    deployed_twice(deployer_cli, app, unique_instance)
    docker("start", f"{unique_instance}.web.r1")  # what a restart policy does after an engine restart

    status = deployer_cli("status", unique_instance, check=True)
    assert "a retained container running (deploy stops it)" in status.stdout

    repaired = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert f"stopped leftover {unique_instance}.web.r1" in repaired.stdout
    assert "leftovers of 1 service repaired" in repaired.stdout
    assert not running(f"{unique_instance}.web.r1") and running(f"{unique_instance}.web")
    releases = json.loads(deployer_cli("history", unique_instance, "--json", check=True).stdout)["releases"]
    assert [r["release"] for r in releases] == [1, 2]  # a repair is no release
    again = deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    assert "nothing was changed" in again.stdout


def test_the_new_container_of_a_cut_off_start_first_step_is_removed(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    worker = f"{unique_instance}.worker"
    labels = ["--label", f"deployer.instance={unique_instance}", "--label", "deployer.service=worker"]
    docker("run", "-d", "--name", f"{worker}.next", *labels, "local/busybox", "sleep", "3600")

    repaired = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert f"removed leftover {worker}.next" in repaired.stdout
    assert docker("inspect", f"{worker}.next").returncode != 0
    assert running(worker)


def test_retained_containers_beyond_retain_are_removed_by_the_next_deploy(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    for n in range(1, 4):
        app.write_text(APP.replace("GREETING: hello", f"GREETING: v{n}"))
        deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    repaired = deployer_cli("deploy", app, "--instance", unique_instance, env={"FABRIC_DEPLOYER_RETAIN": "1"}, check=True)

    assert f"removed retained {unique_instance}.web.r1 (beyond retain)" in repaired.stdout
    names = set(docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"label=deployer.instance={unique_instance}",
                       "--filter", "label=deployer.service=web").stdout.split())
    assert names == {f"{unique_instance}.web", f"{unique_instance}.web.r3"}
