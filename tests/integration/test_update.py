"""Deploying over an existing instance changes only what changed, and says why."""

from support import APP, docker, inspect


def ids(instance):
    return {service: inspect(f"{instance}.{service}", "{{.Id}}") for service in ("web", "worker")}


def test_a_no_op_deploy_recreates_nothing_and_makes_no_release(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    before = ids(unique_instance)

    result = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert ids(unique_instance) == before
    assert "is up to date (release 1); nothing was changed" in result.stdout


def test_an_env_change_recreates_exactly_that_service_and_says_why(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    before = ids(unique_instance)
    app.write_text(APP.replace("GREETING: hello", "GREETING: bye"))

    plan = deployer_cli("deploy", app, "--instance", unique_instance, "--dry-run", check=True)
    assert ids(unique_instance) == before
    assert "recreate  web      env.GREETING changed" in plan.stdout
    assert "keep      worker   unchanged" in plan.stdout and "nothing was changed" in plan.stdout

    result = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    after = ids(unique_instance)
    assert after["worker"] == before["worker"] and after["web"] != before["web"]
    assert "release 2, 1 service changed" in result.stdout


def test_deploy_repairs_a_container_stopped_behind_its_back(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    docker("stop", f"{unique_instance}.worker")

    result = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert "recreate  worker   container exited" in result.stdout
    assert inspect(f"{unique_instance}.worker", "{{.State.Running}}") == "true"


def test_a_service_dropped_from_the_template_is_removed_and_its_volume_kept(deployer_cli, app, unique_instance, sshd):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    app.write_text(APP.split("worker:")[0])

    result = deployer_cli("deploy", app, "--instance", unique_instance, check=True)

    assert "remove  worker   not in the template" in result.stdout
    assert docker("container", "inspect", f"{unique_instance}.worker").returncode != 0
    app.write_text(APP.replace("web:", "other:", 1).split("worker:")[0])
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    assert (sshd.volume_dir / unique_instance / "web" / "www").is_dir()
