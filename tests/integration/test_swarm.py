"""The Swarm engine against a real two-node swarm (harness/swarm.py), through the deployer
command over SSH to the manager: a template's services become Swarm services on the
instance's overlay network, only what changed is updated, a failing update rolls back by
itself and fails the deploy naming why, status says where tasks run, destroy leaves
nothing of the instance; releases and the lock are the cluster's."""

import hashlib
import json
import secrets
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from harness import registry as registry_harness, sshd, swarm as swarm_harness
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


@pytest.mark.parametrize("dies", ["exit 3", "sleep 2; exit 3"])
def test_a_new_service_whose_task_dies_within_the_monitor_period_fails_the_deploy_naming_it_and_is_removed(
        swarm, swarm_cli, instance, tmp_path, dies):
    app = tmp_path / "dies.yaml"
    app.write_text("up: {image: local/busybox, cmd: sleep 3600}\n"
                   f"dies: {{image: local/busybox, cmd: [sh, -c, '{dies}']}}\n")

    failed = swarm_cli("deploy", app, "--instance", instance, check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "deploy stopped at service 'dies' (create): dies: its task failed: " in failed.stderr, failed.stderr
    assert "non-zero exit (3)" in failed.stderr
    assert list(services(swarm, instance)) == [f"{instance}_up"]  # the one that runs is left as it ran


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


def test_the_engine_is_a_setting_too_and_what_a_swarm_cannot_run_is_refused_before_anything_changes(
        swarm, swarm_host, cli_on, instance, tmp_path):
    volumes = tmp_path / "volumes.yaml"
    volumes.write_text("db: {image: local/busybox, cmd: sleep 3600, volumes: [/data]}\n")

    refused = cli_on(swarm_host)("deploy", volumes, "--instance", instance, env={"FABRIC_DEPLOYER_ENGINE": "swarm"},
                                 check=False)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{volumes}: db.volumes: volumes need the same directory on every node" in refused.stderr
    assert "placement: {constraints: ['node.hostname == NODE']}" in refused.stderr
    replicated = tmp_path / "replicated.yaml"
    replicated.write_text("db: {image: local/busybox, cmd: sleep 3600, replicas: 2, volumes: [/data],\n"
                          "     placement: {constraints: ['node.hostname == a']}}\n")
    refused = cli_on(swarm_host)("deploy", replicated, "--instance", instance, env={"FABRIC_DEPLOYER_ENGINE": "swarm"},
                                 check=False)
    assert refused.returncode == 2 and f"{replicated}: db.volumes: the replicas of a service on a swarm share its " \
        "volumes" in refused.stderr, refused.stderr
    assert services(swarm, instance) == {} and not swarm.manager.docker(
        "config", "ls", "-q", "--filter", f"label=deployer.instance={instance}").stdout.split()


def test_volumes_of_a_service_pinned_to_a_node_are_a_named_volume_there_kept_across_updates(
        swarm, swarm_cli, instance, tmp_path):
    worker = swarm.worker.name
    app = tmp_path / "db.yaml"
    text = ("db:\n  image: local/busybox\n  cmd: [sh, -c, 'echo {word} >>/data/words; exec sleep 3600']\n"
            f"  volumes: [/data]\n  placement: {{constraints: ['node.hostname == {worker}']}}\n")
    app.write_text(text.replace("{word}", "one"))
    volume = f"{instance}_db_data"
    try:
        swarm_cli("deploy", app, "--instance", instance, check=True)
        app.write_text(text.replace("{word}", "two"))
        swarm_cli("deploy", app, "--instance", instance, check=True)

        status = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)
        assert status["services"][0]["state"] == f"1/1 running on {worker}"
        labels = json.loads(swarm.worker.docker("volume", "inspect", "--format", "{{json .Labels}}", volume).stdout)
        assert labels["deployer.instance"] == instance
        assert swarm.manager.docker("volume", "inspect", volume).returncode != 0  # on the worker alone
        read = swarm.worker.docker("run", "--rm", "-v", f"{volume}:/data", "local/busybox", "cat", "/data/words")
        assert read.stdout == "one\ntwo\n"
    finally:
        swarm_cli("destroy", instance, "--yes")
        wait_for(lambda: swarm.worker.docker("volume", "rm", volume).returncode == 0 or
                 volume not in swarm.worker.docker("volume", "ls", "-q").stdout.split(), "the volume removed", 60)


def test_destroy_volumes_removes_the_manager_s_and_names_those_it_cannot_reach_on_other_nodes(
        swarm, swarm_cli, instance, tmp_path):
    manager, worker = swarm.manager, swarm.worker
    app = tmp_path / "two.yaml"
    app.write_text("".join(f"{name}:\n  image: local/busybox\n  cmd: [sh, -c, 'echo kept >/data/f; exec sleep 3600']\n"
                           f"  volumes: [/data]\n  placement: {{constraints: ['node.hostname == {node.name}']}}\n"
                           for name, node in (("here", manager), ("there", worker))))
    here, there = f"{instance}_here_data", f"{instance}_there_data"
    try:
        swarm_cli("deploy", app, "--instance", instance, check=True)
        assert manager.docker("volume", "inspect", here).returncode == 0
        assert worker.docker("volume", "inspect", there).returncode == 0

        destroyed = swarm_cli("destroy", instance, "--volumes", "--yes", check=False)

        assert destroyed.returncode == 1 and "Traceback" not in destroyed.stderr
        assert (f"instance {instance}: destroyed, but its volumes on other nodes are kept (a manager removes its "
                f"own node's alone): on {worker.name}: {there} (docker volume rm them there)") in destroyed.stderr
        assert services(swarm, instance) == {}
        assert manager.docker("volume", "inspect", here).returncode != 0  # the manager's: removed
        assert worker.docker("volume", "inspect", there).returncode == 0  # kept, as said
    finally:
        swarm_cli("destroy", instance, "--yes")
        wait_for(lambda: worker.docker("volume", "rm", there).returncode == 0 or
                 there not in worker.docker("volume", "ls", "-q").stdout.split(), "the volume removed", 60)
        manager.docker("volume", "rm", here)


def test_volumes_of_a_volume_driver_need_no_pin_and_keep_their_data_across_an_update(swarm, swarm_cli, instance,
                                                                                     tmp_path):
    app = tmp_path / "db.yaml"
    text = ("db:\n  image: local/busybox\n  cmd: [sh, -c, 'echo {word} >>/data/words; exec sleep 3600']\n"
            "  volumes: [/data]\n  volume_driver: local\n"
            "  placement: {constraints: ['node.role == manager']}\n")  # no pin (names no node); one manager here
    app.write_text(text.replace("{word}", "one"))
    volume, manager = f"{instance}_db_data", swarm.manager
    try:
        swarm_cli("deploy", app, "--instance", instance, check=True)
        app.write_text(text.replace("{word}", "two"))
        swarm_cli("deploy", app, "--instance", instance, check=True)

        assert services(swarm, instance)[f"{instance}_db"]["UpdateStatus"]["State"] == "completed"
        driver = manager.docker("volume", "inspect", "--format", "{{.Driver}} {{json .Labels}}", volume).stdout
        assert driver == f'local {{"deployer.instance":"{instance}"}}\n'
        read = manager.docker("run", "--rm", "-v", f"{volume}:/data", "local/busybox", "cat", "/data/words")
        assert read.stdout == "one\ntwo\n"
    finally:
        swarm_cli("destroy", instance, "--yes")
        wait_for(lambda: manager.docker("volume", "rm", volume).returncode == 0 or
                 volume not in manager.docker("volume", "ls", "-q").stdout.split(), "the volume removed", 60)


def test_an_image_from_a_registry_runs_pinned_by_digest_a_tag_that_moved_updates_it_and_rollback_runs_the_old_one(
        swarm, swarm_cli, instance, registry, tmp_path):
    image, manager = f"{registry}/shop:1", swarm.manager

    def pushed(release):
        dockerfile = f"FROM local/busybox\nLABEL r={release}\n"
        built = subprocess.run(["docker", "build", "-q", "-t", image, "-"], input=dockerfile,
                               env={**manager.engine.env, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True,
                               timeout=120)
        assert built.returncode == 0 and manager.docker("push", image, timeout=120).returncode == 0, built.stderr
        return manager.docker("image", "inspect", "--format", "{{index .RepoDigests 0}}", image).stdout.strip()

    def running():
        return services(swarm, instance)[f"{instance}_app"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    app = tmp_path / "app.yaml"  # on the worker, which has the image only from the registry, by digest
    app.write_text(f"app: {{image: '{image}', cmd: sleep 3600,\n"
                   "      placement: {constraints: ['node.role == worker']}}\n")
    first = pushed(1)
    deployed = swarm_cli("deploy", app, "--instance", instance, check=True)
    assert running() == f"{image}@{first.split('@')[1]}" and "warning" not in deployed.stderr

    second = pushed(2)
    moved = swarm_cli("deploy", app, "--instance", instance, check=True)

    assert f"image {image} updated ({first.split(':')[-1][:12]} -> {second.split(':')[-1][:12]})" in moved.stdout
    assert running() == f"{image}@{second.split('@')[1]}"
    assert swarm_cli("deploy", app, "--instance", instance, check=True).stdout.count("unchanged") == 1
    rows = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)["services"]
    assert rows[0]["state"] == f"1/1 running on {swarm.worker.name}"

    swarm_cli("rollback", instance, check=True)  # to release 1: its digest, though the tag moved since

    assert running() == f"{image}@{first.split('@')[1]}"


def test_an_image_of_a_registry_that_wants_a_login_is_pulled_by_every_node_with_the_manager_s_login(
        swarm, cli_on, instance, tmp_path):
    """A ``docker login`` on the manager, by the user deployer's sessions run as, is all a
    worker needs to pull a private image: services are created and updated with it."""
    manager, config = swarm.manager, tmp_path / "docker-config"  # the sessions' docker client's

    def docker(*argv, stdin=None, client="pusher"):
        env = {**manager.engine.env, "DOCKER_CONFIG": str(tmp_path / client), "DOCKER_BUILDKIT": "0"}
        done = subprocess.run(["docker", *argv], input=stdin, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    with registry_harness.running(swarm.host, login=("shop", "s3cret")) as registry, \
            sshd.running(tmp_path / "sshd", {"DOCKER_HOST": manager.engine.url, "DOCKER_CONFIG": str(config)}) as host:
        image = f"{registry}/private"

        def pushed(tag):
            docker("build", "-q", "-t", f"{image}:{tag}", "-", stdin=f"FROM local/busybox\nLABEL r={tag}\n")
            docker("push", f"{image}:{tag}")

        def deployed(tag):
            app = tmp_path / "app.yaml"  # on the worker, which has the image only from the registry
            app.write_text(f"app: {{image: '{image}:{tag}', cmd: sleep 3600,\n"
                           "      placement: {constraints: ['node.role == worker']}}\n")
            return cli_on(host)("--engine", "swarm", "deploy", app, "--instance", instance)

        docker("login", "-u", "shop", "--password-stdin", registry, stdin="s3cret")
        pushed(1)
        denied = deployed(1)  # no login on the manager yet: the worker cannot pull it
        assert denied.returncode == 1 and "its task failed" in denied.stderr, denied.stderr
        docker("login", "-u", "shop", "--password-stdin", registry, stdin="s3cret", client=config.name)

        created = deployed(1)
        pushed(2)
        updated = deployed(2)  # a new digest, which the worker pulls again

        assert created.returncode == 0 and updated.returncode == 0, created.stderr + updated.stderr
        rows = json.loads(cli_on(host)("--engine", "swarm", "status", instance, "--json", check=True).stdout)
        assert rows["services"][0]["state"] == f"1/1 running on {swarm.worker.name}"
        assert f"{image}:2@sha256:" in services(swarm, instance)[f"{instance}_app"]["Spec"]["TaskTemplate"][
            "ContainerSpec"]["Image"]


REPLICATED = TEMPLATE.split("app:")[0].replace("  register: {8080: http}\n", "  replicas: 4\n")


def tasks(swarm, instance, service="web"):
    """{task id: node} of the service's tasks meant to run."""
    listed = swarm.manager.docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.ID}} {{.Node}}",
                                  f"{instance}_{service}").stdout
    return dict(line.split() for line in listed.splitlines())


def test_replicas_are_one_service_whose_tasks_spread_over_the_nodes_rolled_two_at_a_time_scaled_in_place(
        swarm, swarm_cli, instance, template):
    template.write_text(REPLICATED)
    batch = {"FABRIC_DEPLOYER_ROLLING_BATCH": "2"}
    first = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", env=batch, check=True)

    (web,) = services(swarm, instance).values()
    assert web["Spec"]["Mode"]["Replicated"]["Replicas"] == 4 and web["Spec"]["UpdateConfig"]["Parallelism"] == 2
    running = tasks(swarm, instance)
    assert len(running) == 4 and set(running.values()) == {n.name for n in swarm.nodes}, first.stdout

    def status():
        rows = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)["services"]
        return {row["service"]: row["state"] for row in rows}

    shown = status()
    assert sorted(shown) == ["web.1", "web.2", "web.3", "web.4"]
    assert all(state.startswith("running on ") for state in shown.values()), shown
    assert sorted(state.split()[-1] for state in shown.values()) == sorted(running.values())  # a replica a task

    again = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    assert again.stdout.count("unchanged") == 4 and tasks(swarm, instance) == running
    assert json.loads(swarm_cli("status", instance, "--json", check=True).stdout)["release"] == 1  # no new release

    changed = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=bonjour", env=batch, check=True)
    assert changed.stdout.count("env.GREETING changed") == 4, changed.stdout
    now = services(swarm, instance)[f"{instance}_web"]
    assert now["ID"] == web["ID"] and now["UpdateStatus"]["State"] == "completed" and env(now)["GREETING"] == "bonjour"
    rolled = tasks(swarm, instance)
    assert len(rolled) == 4 and not rolled.keys() & running.keys()  # every task anew

    up = swarm_cli("scale", instance, "web=6", check=True)
    scaled = services(swarm, instance)[f"{instance}_web"]
    assert scaled["ID"] == web["ID"] and scaled["Spec"]["Mode"]["Replicated"]["Replicas"] == 6, up.stdout
    assert rolled.keys() < tasks(swarm, instance).keys()  # no task of the four restarted
    assert sorted(status()) == [f"web.{n}" for n in range(1, 7)]

    swarm_cli("scale", instance, "web=2", check=True)
    assert len(tasks(swarm, instance)) == 2 and sorted(status()) == ["web.1", "web.2"]
    assert services(swarm, instance)[f"{instance}_web"]["ID"] == web["ID"]

    swarm_cli("rollback", instance, check=True)  # to the six of the release before

    restored = services(swarm, instance)[f"{instance}_web"]
    assert restored["ID"] == web["ID"] and restored["Spec"]["Mode"]["Replicated"]["Replicas"] == 6
    assert len(tasks(swarm, instance)) == 6 and len(status()) == 6


def test_a_replicated_service_is_exposed_by_its_service_s_name_which_answers_from_its_tasks(swarm, swarm_cli,
                                                                                          instance, tmp_path):
    template = tmp_path / "replicated.yaml"
    template.write_text(TEMPLATE.replace("  register:", "  replicas: 2\n  register:", 1))

    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", check=True)

    assert env(services(swarm, instance)[f"{instance}_app"])["WEB"] == f"web.{instance}:8080"  # one name, its tasks'
    assert fetch_from(swarm, instance, "app", "WEB") == "hi\n"


def test_logs_print_every_task_s_lines_wherever_it_runs(swarm, swarm_cli, instance, tmp_path):
    template = tmp_path / "talk.yaml"
    template.write_text("talk:\n  image: local/busybox\n  replicas: 2\n"
                        "  cmd: [sh, -c, 'echo \"said $(hostname)\"; exec sleep 3600']\n")
    swarm_cli("deploy", template, "--instance", instance, check=True)

    def said():
        lines = swarm_cli("logs", instance, "--tail", "5", check=True).stdout.splitlines()
        found = [line for line in lines if "said " in line]
        return found if len(found) == 2 else None

    lines = wait_for(said, "the log lines of both tasks", interval=1)
    assert sorted(line.split("@")[0] for line in lines) == [f"{instance}_talk.1", f"{instance}_talk.2"]


def test_a_replicated_service_whose_update_fails_rolls_back_all_its_tasks_and_the_deploy_names_it(
        swarm, swarm_cli, instance, template, tmp_path):
    template.write_text(REPLICATED.replace("replicas: 4", "replicas: 3"))
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    broken = tmp_path / "broken.yaml"
    broken.write_text(template.read_text().replace("exec httpd -f -p 8080 -h /tmp", "exit 3"))

    failed = swarm_cli("deploy", broken, "--instance", instance, "--var", "greeting=hello", check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "(recreate): web: the update failed and was rolled back" in failed.stderr, failed.stderr
    assert "deploy stopped at service 'web.1'" in failed.stderr
    web = services(swarm, instance)[f"{instance}_web"]
    assert web["UpdateStatus"]["State"] == "rollback_completed" and web["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
    assert "httpd" in " ".join(web["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"])
    assert len(tasks(swarm, instance)) == 3  # (the same tasks, or the rollback's: as start-first went)
    again = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hello", check=True)
    assert again.stdout.count("unchanged") == 3, again.stdout  # the state says what runs


def test_a_node_that_lacks_an_image_used_by_name_is_named_in_a_warning(swarm, swarm_cli, instance, tmp_path):
    image = f"local/only-on-manager-{instance}"
    assert swarm.manager.docker("tag", "local/busybox", image).returncode == 0
    app = tmp_path / "app.yaml"
    app.write_text(f"app: {{image: '{image}', cmd: sleep 3600,\n"
                   "      placement: {constraints: ['node.role == manager']}}\n")
    try:
        deployed = swarm_cli("deploy", app, "--instance", instance, check=True)

        warning = (f"warning: image {image} has no registry digest, so it is used by name, and 1 node lacks it: "
                   f"{swarm.worker.name} (a task placed there fails; load or pull it there)")
        assert warning in deployed.stderr and deployed.stderr.count("warning:") == 1, deployed.stderr
        assert services(swarm, instance)[f"{instance}_app"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == \
            f"{image}:latest"  # by name (docker names the tag)
        assert [n for n in swarm.manager.docker("service", "ls", "--format", "{{.Name}}").stdout.split()
                if n.startswith("deployer-probe-")] == []  # the probe is gone
        again = swarm_cli("deploy", app, "--instance", instance, check=True)
        assert "warning:" not in again.stderr  # nothing started anew: nothing probed
    finally:
        swarm_cli("destroy", instance, "--yes")
        swarm.manager.docker("rmi", image)


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


def held_by(swarm, instance, node, pid):
    """The instance's lock, as a deploy through ``node`` by process ``pid`` takes it."""
    node_id = node.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    made = subprocess.run(["docker", "config", "create", lock_of(instance), "-"], env=swarm.manager.engine.env,
                          text=True, input=f"{node_id} {pid} 1 ops@elsewhere since 2026-12-02T04:00:00Z",
                          capture_output=True)
    assert made.returncode == 0, made.stderr


def test_the_lock_holds_across_the_cluster_and_a_gone_holder_s_lock_is_taken_over(swarm, swarm_cli, instance, template):
    manager = swarm.manager
    lock = lock_of(instance)

    def held_by(node, pid):
        globals()["held_by"](swarm, instance, node, pid)

    held_by(swarm.worker, 1)  # a deploy in progress through another node
    waited = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", "--lock-wait", "1")
    assert waited.returncode == 1 and "locked by ops@elsewhere since 2026-12-02T04:00:00Z (waited 1 s" in waited.stderr
    assert services(swarm, instance) == {}

    manager.docker("config", "rm", lock)
    held_by(manager, 999999999)  # a deploy through the manager whose process is gone
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=hi", "--lock-wait", "1", check=True)

    assert lock not in manager.docker("config", "ls", "--format", "{{.Name}}").stdout.split()  # released at the end


def test_a_live_holder_beats_and_one_silent_for_30_s_on_another_live_manager_is_taken_over(
        swarm, swarm_cli, instance, template):
    slow = template.read_text().replace("  register: {8080: http}\n", "  register: {8080: http}\n  healthcheck: "
                                        "{cmd: 'test -f /tmp/up || { sleep 8; touch /tmp/up; false; }', interval: 1s}\n")
    template.write_text(slow)
    configs = lambda: swarm.manager.docker("config", "ls", "--format", "{{.Name}}").stdout.split()  # noqa: E731
    beats = lambda: [name for name in configs() if name.startswith(lock_of(instance) + "-")]  # noqa: E731

    with ThreadPoolExecutor(1) as pool:
        deploying = pool.submit(swarm_cli, "deploy", template, "--instance", instance, "--var", "greeting=hi")
        assert wait_for(beats, "a beat of the deploy holding the lock", timeout=60, interval=0.5)
        assert deploying.result().returncode == 0, deploying.result().stderr
    assert lock_of(instance) not in configs()
    assert wait_for(lambda: not beats(), "its beats gone with it", timeout=15, interval=1)

    held_by(swarm, instance, swarm.worker, 1)  # a deploy through the worker, SIGKILLed: its lock never beats
    waited = swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=ho", "--lock-wait", "1")
    assert waited.returncode == 1 and "locked by ops@elsewhere" in waited.stderr  # young: its holder may be starting
    time.sleep(31)
    swarm_cli("deploy", template, "--instance", instance, "--var", "greeting=ho", "--lock-wait", "1", check=True)
    assert lock_of(instance) not in configs()


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


def test_the_same_template_deploys_unchanged_to_one_host_and_to_the_swarm_placement_said_once_on_the_host(
        swarm, swarm_cli, deployer_cli, instance, template):
    template.write_text(TEMPLATE.replace("  register:", "  placement: {constraints: ['node.role == manager'], "
                                                        "spread: node.labels.zone}\n  register:", 1))
    said = f"warning: {template}: web.placement: means nothing to one Docker engine (deployer.engine docker), ignored"
    try:
        for run in (deployer_cli, swarm_cli):
            deployed = run("deploy", template, "--instance", instance, "--var", "greeting=hi", check=True)
            assert deployed.stderr.count(said) == (run is deployer_cli), deployed.stderr
            rows = json.loads(run("status", instance, "--json", check=True).stdout)["services"]
            assert sorted(row["service"] for row in rows) == ["app", "web"]
        made = services(swarm, instance)
        assert sorted(made) == [f"{instance}_app", f"{instance}_web"]
        placement = made[f"{instance}_web"]["Spec"]["TaskTemplate"]["Placement"]
        assert placement["Constraints"] == ["node.role == manager"]
        assert placement["Preferences"] == [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]
    finally:
        deployer_cli("destroy", instance, "--yes")


def test_v_shows_each_service_command_with_secrets_masked(swarm, swarm_cli, instance, tmp_path):
    secret = "s3cr3t-'$(id)'"
    app = tmp_path / "secret.yaml"
    app.write_text("worker: {image: local/busybox, cmd: sleep 3600, env: {TOKEN: {secret: TOKEN}}}\n")

    shown = swarm_cli("-v", "deploy", app, "--instance", instance, env={"TOKEN": secret}, check=True)

    assert "docker service create" in shown.stderr + shown.stdout
    assert secret not in shown.stderr + shown.stdout
    assert "TOKEN" not in env(services(swarm, instance)[f"{instance}_worker"])  # a Swarm secret (test_swarm_secrets)


def test_a_host_whose_engine_is_no_swarm_manager_is_one_clear_error(deployer_cli, instance):
    refused = deployer_cli("--engine", "swarm", "status", instance, check=False)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "this host's Docker engine is no swarm manager (deployer.engine swarm)" in refused.stderr
