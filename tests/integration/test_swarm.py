"""The Swarm engine against a real two-node swarm (harness/swarm.py), through the deployer
command over SSH to the manager: a template's services become Swarm services on the
instance's overlay network, only what changed is updated, a failing update rolls back by
itself and fails the deploy naming why, status says where tasks run, destroy leaves
nothing of the instance; releases and the lock are the cluster's."""

import hashlib
import json
import secrets
import subprocess

import pytest
from harness import sshd, swarm as swarm_harness
from harness.poll import wait_for
from support import GET

TEMPLATE = """\
web:
  image: local/busybox
  cmd: [sh, -c, 'echo "$GREETING" >/tmp/index.html; exec httpd -f -p 8080 -h /tmp']
  env: {GREETING: "{greeting}"}
  register: {8080: http}
app:
  image: local/busybox
  cmd: sleep 3600
  expose: {"web:http": WEB}
"""
HOSTILE = """it's "$(touch /tmp/swpwned)"; `id` \\ done"""


@pytest.fixture
def swarm_cli(swarm_host, cli_on):
    """run(*args, ...): the deployer command with --engine swarm, against the manager."""
    run = cli_on(swarm_host)
    return lambda *args, **kwargs: run("--engine", "swarm", *args, **kwargs)


@pytest.fixture
def instance(swarm):
    """A throwaway instance name; whatever of it is left on the swarm is removed at the end."""
    name = f"sw{secrets.token_hex(3)}"
    yield name
    manager = swarm.manager
    for kind in ("service", "network", "config", "secret"):
        ids = manager.docker(kind, "ls", "-q", "--filter", f"label=deployer.instance={name}").stdout.split()
        if ids:
            manager.docker(kind, "rm", *ids)
    manager.docker("config", "rm", lock_of(name))


def lock_of(instance):
    """The name of the config that is the instance's lock."""
    return "deployer-lock-" + hashlib.sha256(instance.encode()).hexdigest()[:16]


@pytest.fixture
def template(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(TEMPLATE)
    return path


def services(swarm, instance):
    """{service name: its spec} of the instance's services."""
    manager = swarm.manager
    ids = manager.docker("service", "ls", "-q", "--filter", f"label=deployer.instance={instance}").stdout.split()
    inspected = json.loads(manager.docker("service", "inspect", *ids).stdout) if ids else []
    return {s["Spec"]["Name"]: s for s in inspected}


def env(service):
    return dict(line.split("=", 1) for line in service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Env", []))


def fetch_from(swarm, instance, service, variable):
    """An HTTP GET, from the service's container wherever it runs, of the address in its env var."""
    for node in swarm.nodes:
        ids = node.docker("ps", "-q", "--filter", f"label=deployer.instance={instance}",
                          "--filter", f"label=deployer.service={service}").stdout.split()
        if ids:
            got = node.docker("exec", ids[0], "sh", "-c", f'{GET}', "get", env_of_task(node, ids[0])[variable], "5")
            return got.stdout
    raise AssertionError(f"no container of {service} on any node")


def env_of_task(node, container):
    listed = json.loads(node.docker("inspect", "--format", "{{json .Config.Env}}", container).stdout)
    return dict(line.split("=", 1) for line in listed)


def test_a_template_deploys_as_services_that_find_each_other_and_only_changes_are_updated(
        swarm, swarm_cli, instance, template):
    first = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)

    made = services(swarm, instance)
    assert sorted(made) == [f"{instance}_app", f"{instance}_web"], first.stdout
    web = made[f"{instance}_web"]
    assert web["Spec"]["Labels"]["deployer.service"] == "web" and web["Spec"]["Labels"]["deployer.release"] == "1"
    assert env(made[f"{instance}_app"])["WEB"] == f"web.{instance}:8080"  # the alias on the overlay network
    assert fetch_from(swarm, instance, "app", "WEB") == "hello\n"  # across the overlay, whichever node

    again = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    assert "unchanged" in again.stdout
    assert services(swarm, instance)[f"{instance}_web"]["Version"] == web["Version"]  # untouched

    changed = swarm_cli("deploy", template, "--instance", instance, "--var", f"greeting={HOSTILE}", check=True)
    now = services(swarm, instance)
    assert env(now[f"{instance}_web"])["GREETING"] == HOSTILE, changed.stdout
    assert now[f"{instance}_web"]["UpdateStatus"]["State"] == "completed"
    assert now[f"{instance}_app"]["Version"] == made[f"{instance}_app"]["Version"]  # app did not change
    assert fetch_from(swarm, instance, "app", "WEB") == HOSTILE + "\n"


def test_a_failing_update_rolls_back_by_itself_and_the_deploy_says_why(swarm, swarm_cli, instance, template, tmp_path):
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.replace("exec httpd -f -p 8080 -h /tmp", "exit 3"))

    failed = swarm_cli("deploy", broken, "--instance", instance, "--var", "greeting=hello", check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "deploy stopped at service 'web'" in failed.stderr and "rolled back" in failed.stderr, failed.stderr
    web = services(swarm, instance)[f"{instance}_web"]
    assert web["UpdateStatus"]["State"] == "rollback_completed"
    assert "httpd" in " ".join(web["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"])  # the release before runs
    assert fetch_from(swarm, instance, "app", "WEB") == "hello\n"


def test_status_says_how_many_tasks_run_and_where_and_destroy_leaves_nothing(swarm, swarm_cli, instance, template):
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    forced = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", "--force", check=True)
    assert [s.get("UpdateStatus", {}).get("State") for s in services(swarm, instance).values()] == ["completed"] * 2, \
        forced.stdout  # the same spec, new tasks

    status = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)

    states = {row["service"]: row["state"] for row in status["services"]}
    nodes = {n.name for n in swarm.nodes}
    assert set(states) == {"web", "app"}
    assert all(state.startswith("1/1 running on ") and state.split()[-1] in nodes for state in states.values()), states

    swarm_cli("destroy", instance, "--yes", check=True)

    for kind in ("service", "network", "config", "secret"):
        left = swarm.manager.docker(kind, "ls", "-q", "--filter", f"label=deployer.instance={instance}")
        assert left.stdout.split() == [], kind
    gone = swarm_cli("status", instance, check=False)
    assert gone.returncode == 1 and "no such instance" in gone.stderr


def test_the_engine_is_a_setting_too_and_what_a_swarm_cannot_run_is_an_error(swarm_host, cli_on, instance, tmp_path):
    volumes = tmp_path / "volumes.yaml"
    volumes.write_text("db: {image: local/busybox, cmd: sleep 3600, volumes: [/data]}\n")

    refused = cli_on(swarm_host)("deploy", volumes, "--instance", instance, env={"FABRIC_DEPLOYER_ENGINE": "swarm"},
                                 check=False)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "service db: volumes need the same directory on every node" in refused.stderr
    assert instance in refused.stderr and swarm_host.target in refused.stderr


@pytest.fixture
def second_manager(swarm, tmp_path):
    """The worker promoted to a manager for the test (demoted again: two managers lose
    their quorum when one stops), and an SSH host whose sessions reach it."""
    promoted = swarm.manager.docker("node", "promote", swarm.worker.name)
    assert promoted.returncode == 0, promoted.stderr
    try:
        with sshd.running(tmp_path / "sshd", {"DOCKER_HOST": swarm.worker.engine.url}) as host:
            yield host
    finally:
        swarm.manager.docker("node", "demote", swarm.worker.name)


def test_releases_are_held_by_the_cluster_so_another_manager_answers_and_rolls_back(
        swarm, swarm_cli, cli_on, second_manager, instance, template):
    for greeting in ("one", "two", "three"):
        swarm_cli("deploy", template, "--instance", instance, "--var", f"greeting={greeting}", check=True)
    elsewhere = cli_on(second_manager)

    listed = json.loads(elsewhere("--engine", "swarm", "history", instance, "--json", check=True).stdout)
    assert [r["release"] for r in listed["releases"]] == [1, 2, 3]
    assert [sorted(r["changes"]) for r in listed["releases"]] == [["app", "web"], ["web"], ["web"]]

    listed = json.loads(elsewhere("--engine", "swarm", "list", "--json", check=True).stdout)
    assert (instance, 3) in [(i["instance"], i["release"]) for i in listed["instances"]]
    again = elsewhere("--engine", "swarm", "redeploy", instance, check=True)
    assert "unchanged" in again.stdout

    elsewhere("--engine", "swarm", "rollback", instance, "--to", "1", check=True)

    assert env(services(swarm, instance)[f"{instance}_web"])["GREETING"] == "one"
    status = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)
    assert status["release"] == 4


def test_the_lock_holds_across_the_cluster_and_a_gone_holder_s_lock_is_taken_over(swarm, swarm_cli, instance, template):
    manager = swarm.manager
    lock = lock_of(instance)

    def held_by(node, pid):
        node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
        made = subprocess.run(["docker", "config", "create", lock, "-"], env=manager.engine.env, text=True,
                              input=f"{node_id} {pid} 1 ops@elsewhere since 2026-12-02T04:00:00Z", capture_output=True)
        assert made.returncode == 0, made.stderr

    held_by(swarm.worker, 1)  # a deploy in progress through another node
    waited = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", "--lock-wait", "1")
    assert waited.returncode == 1 and "locked by ops@elsewhere since 2026-12-02T04:00:00Z (waited 1 s" in waited.stderr
    assert services(swarm, instance) == {}

    manager.docker("config", "rm", lock)
    held_by(manager, 999999999)  # a deploy through the manager whose process is gone
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", "--lock-wait", "1", check=True)

    assert lock not in manager.docker("config", "ls", "--format", "{{.Name}}").stdout.split()  # released at the end


def test_a_lost_node_s_tasks_move_status_says_where_and_the_next_deploy_changes_nothing(
        swarm, swarm_cli, instance, template):
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", check=True)

    def where():
        rows = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)["services"]
        return {row["service"]: row["state"].rsplit(" ", 1)[-1] for row in rows}

    assert swarm.worker.name in where().values()  # two services: Swarm spreads them over both nodes
    with swarm_harness.stopped(swarm, swarm.worker):
        moved = {"web": swarm.manager.name, "app": swarm.manager.name}
        assert wait_for(lambda: where() == moved, "the worker's task on the manager", timeout=120, interval=2)
        again = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", check=True)
        assert "unchanged" in again.stdout


def test_the_same_template_deploys_unchanged_to_one_host_and_to_the_swarm(swarm, swarm_cli, deployer_cli, instance,
                                                                          template):
    try:
        for run in (deployer_cli, swarm_cli):
            run("deploy", template, "--instance", instance, "--var", "greeting=hi", check=True)
            rows = json.loads(run("status", instance, "--json", check=True).stdout)["services"]
            assert sorted(row["service"] for row in rows) == ["app", "web"]
        assert sorted(services(swarm, instance)) == [f"{instance}_app", f"{instance}_web"]
    finally:
        deployer_cli("destroy", instance, "--yes")


def test_v_shows_each_service_command_with_secrets_masked(swarm, swarm_cli, instance, tmp_path):
    secret = "s3cr3t-'$(id)'"
    app = tmp_path / "secret.yaml"
    app.write_text("worker: {image: local/busybox, cmd: sleep 3600, env: {TOKEN: {secret: TOKEN}}}\n")

    shown = swarm_cli("-v", "deploy", app, "--instance", instance, env={"TOKEN": secret}, check=True)

    assert "docker service create" in shown.stderr + shown.stdout
    assert secret not in shown.stderr + shown.stdout
    assert env(services(swarm, instance)[f"{instance}_worker"])["TOKEN"] == secret


def test_a_host_whose_engine_is_no_swarm_manager_is_one_clear_error(deployer_cli, instance):
    refused = deployer_cli("--engine", "swarm", "status", instance, check=False)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "this host's Docker engine is no swarm manager (deployer.engine swarm)" in refused.stderr
