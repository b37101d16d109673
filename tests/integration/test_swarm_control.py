"""stop, start, restart and exec on a real two-node swarm (harness/swarm.py, the fixtures of
test_swarm.py), through the deployer command over SSH to the manager: stop scales a service
to no task and the cluster keeps its count, which status shows and start brings back;
restart replaces every task, a routed service answering every request meanwhile, and leaves
nothing for a deploy to do; exec runs a command in a task on the manager, its output and
exit code passed through, and says where the tasks are when none runs there."""

from test_router import Client, failed, router_image, steady  # noqa: F401 (router_image: a fixture)
from test_swarm import instance, services, swarm_cli, tasks  # noqa: F401 (fixtures)
from test_swarm_routes import ca_of, router, shop  # noqa: F401 (router: a fixture)

TEMPLATE = """\
web:
  image: local/busybox
  replicas: 3
  cmd: [sh, -c, 'echo "said $0" >/tmp/index.html; exec httpd -f -p 8080 -h /tmp', '{word}']
"""


def rows(swarm_cli, instance):
    """{unit: state} of the status table's rows."""
    lines = swarm_cli("status", instance, check=True).stdout.splitlines()
    return {line.split()[0]: line.split()[2] for line in lines if line.startswith("web")}


def test_stop_keeps_the_count_that_status_shows_and_start_brings_back_over_both_nodes(swarm, swarm_cli, instance,
                                                                                   tmp_path):
    template = tmp_path / "web.yaml"
    template.write_text(TEMPLATE)
    swarm_cli("deploy", template, "--instance", instance, "--var", "word=hi", check=True)

    stopped = swarm_cli("stop", instance, check=True)

    assert f"stop: {instance}.web.1, {instance}.web.2, {instance}.web.3" in stopped.stdout
    assert tasks(swarm, instance) == {}
    web = services(swarm, instance)[f"{instance}_web"]
    assert web["Spec"]["Mode"]["Replicated"]["Replicas"] == 0 and web["Spec"]["Labels"]["deployer.stopped"] == "3"
    assert rows(swarm_cli, instance) == {"web.1": "stopped", "web.2": "stopped", "web.3": "stopped"}
    assert swarm_cli("stop", instance, check=True).returncode == 0  # stopped already: the count stays
    assert services(swarm, instance)[f"{instance}_web"]["Spec"]["Labels"]["deployer.stopped"] == "3"

    swarm_cli("start", instance, check=True)

    running = tasks(swarm, instance)
    assert len(running) == 3 and set(running.values()) == {swarm.manager.name, swarm.worker.name}, running
    assert set(rows(swarm_cli, instance).values()) == {"running"}
    assert "deployer.stopped" not in services(swarm, instance)[f"{instance}_web"]["Spec"]["Labels"]

    swarm_cli("stop", instance, "--service", "web", check=True)
    deployed = swarm_cli("deploy", template, "--instance", instance, "--var", "word=ho", check=True)

    assert deployed.stdout.count("container stopped") == 3, deployed.stdout  # a deploy starts it, at its new spec
    assert len(tasks(swarm, instance)) == 3
    assert swarm_cli("exec", instance, "web", "--", "cat", "/tmp/index.html", check=True).stdout == "said ho\n"


def test_restart_replaces_every_task_and_the_deploy_after_it_changes_nothing(swarm, swarm_cli, instance, tmp_path):
    template = tmp_path / "web.yaml"
    template.write_text(TEMPLATE)
    swarm_cli("deploy", template, "--instance", instance, "--var", "word=hi", check=True)
    before = tasks(swarm, instance)

    swarm_cli("restart", instance, check=True)

    after = tasks(swarm, instance)
    assert len(after) == 3 and not set(after) & set(before), (before, after)
    again = swarm_cli("deploy", template, "--instance", instance, "--var", "word=hi", check=True)
    assert again.stdout.count("unchanged") == 3 and "nothing was changed" in again.stdout, again.stdout


def test_restart_of_a_routed_service_answers_every_request_on_every_node_meanwhile(swarm, swarm_cli, router, instance,
                                                                                    tmp_path):
    domain = f"{instance}.shop.test"
    template = shop(tmp_path, instance, "1", domain)
    try:
        swarm_cli("deploy", template, "--instance", instance, env=router, check=True)
        before = tasks(swarm, instance)

        with steady(Client(router, ca_of(swarm.manager), domain, swarm.manager.address)) as on_manager, \
                steady(Client(router, ca_of(swarm.worker), domain, swarm.worker.address)) as on_worker:
            swarm_cli("restart", instance, env=router, check=True)

        assert len(tasks(swarm, instance)) == 1 and not set(tasks(swarm, instance)) & set(before)
        for seen in (on_manager, on_worker):
            assert len(seen) > 20 and not failed(seen), (len(seen), failed(seen)[:5])
    finally:
        swarm_cli("destroy", instance, "--yes", env=router)


def test_exec_runs_in_a_task_on_the_manager_passing_output_stdin_and_exit_code(swarm, swarm_cli, instance, tmp_path):
    template = tmp_path / "web.yaml"
    template.write_text(TEMPLATE.replace("replicas: 3", "placement: {constraints: ['node.role == manager']}"))
    swarm_cli("deploy", template, "--instance", instance, "--var", "word=hi", check=True)

    ran = swarm_cli("exec", instance, "web", "--", "sh", "-c", 'cat /tmp/index.html; echo "$0"; exit 7', "it's $(id)")
    piped = swarm_cli("exec", instance, "web", "--", "tr", "a-z", "A-Z", input="piped in\n")

    assert (ran.returncode, ran.stdout) == (7, "said hi\nit's $(id)\n"), ran.stderr
    assert (piped.returncode, piped.stdout) == (0, "PIPED IN\n"), piped.stderr


def test_exec_where_no_task_runs_on_the_manager_names_the_nodes_its_tasks_run_on(swarm, swarm_cli, instance, tmp_path):
    template = tmp_path / "web.yaml"
    template.write_text(TEMPLATE.replace("replicas: 3", "placement: {constraints: ['node.role == worker']}"))
    swarm_cli("deploy", template, "--instance", instance, "--var", "word=hi", check=True)

    failed = swarm_cli("exec", instance, "web", "--", "true")

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    said = (f": instance {instance}: exec web: no task of {instance}_web runs on this manager, whose docker reaches "
            f"its own node's containers alone; its tasks run on {swarm.worker.name}: run docker exec there (docker ps "
            f"--filter label=com.docker.swarm.service.name={instance}_web names the container)\n")
    assert failed.stderr.startswith("error: host ") and failed.stderr.endswith(said), failed.stderr
