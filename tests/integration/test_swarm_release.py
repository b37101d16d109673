"""Release commands and ``run`` on a real two-node swarm (harness/swarm.py, the fixtures of
test_swarm.py): a service's release command is a job of its new spec on the instance's
overlay network, run before its step, its output streamed, its exit code in the output and
the history; a failing one leaves the service as it was and the deploy exits 1 naming it;
``run`` is a job too, printing its output and passing its exit code; no job is left."""

import json
import subprocess

from conftest import _command
from harness import REPO_ROOT
from harness.poll import wait_for
from test_swarm import instance, services, swarm_cli  # noqa: F401 (fixtures)

TEMPLATE = """\
db:
  image: local/busybox
  cmd:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      printf '#!/bin/sh\\necho "$QUERY_STRING" >>/tmp/marks\\nprintf "Content-Type: text/plain\\\\r\\\\n\\\\r\\\\nmarked\\\\n"\\n' >/www/cgi-bin/mark
      chmod +x /www/cgi-bin/mark
      exec httpd -f -p 8080 -h /www
  register: {8080: http}
web:
  image: local/busybox
  cmd: sleep 3600
  env: {VERSION: "{version}"}
  expose: {"db:http": DB}
  release:
    - sh
    - -c
    - 'echo "migrating to $VERSION"; wget -q -O - "http://$DB/cgi-bin/mark?release-$VERSION" || exit 9;
       if [ "$VERSION" = bad ]; then echo "the migration broke" >&2; exit 3; fi;
       if [ "$VERSION" = slow ]; then exec sleep 300; fi'
"""


def marks(swarm, instance):
    """The marks the release commands left in the db service's container, wherever it runs."""
    for node in swarm.nodes:
        ids = node.docker("ps", "-q", "--filter", f"label=deployer.instance={instance}",
                          "--filter", "label=deployer.service=db").stdout.split()
        if ids:
            return node.docker("exec", ids[0], "sh", "-c", "cat /tmp/marks 2>/dev/null").stdout.split()
    raise AssertionError("no container of db on any node")


def env(swarm, instance, service):
    spec = services(swarm, instance)[f"{instance}_{service}"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    return dict(line.split("=", 1) for line in spec.get("Env", []))


def test_a_release_command_reaches_the_instance_s_database_before_its_service_changes_and_only_when_it_does(
        swarm, swarm_cli, instance, tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(TEMPLATE)

    first = swarm_cli("deploy", app, "--instance", instance, "--var", "version=1", check=True)

    assert "web release | migrating to 1" in first.stderr + first.stdout and "web release | marked" in \
        first.stderr + first.stdout
    assert "release command of web: exit code 0" in first.stdout
    assert marks(swarm, instance) == ["release-1"]  # through the overlay network, by the name expose gives
    assert sorted(services(swarm, instance)) == [f"{instance}_db", f"{instance}_web"]  # the job is gone

    same = swarm_cli("deploy", app, "--instance", instance, "--var", "version=1", check=True)
    assert "release command" not in same.stdout and marks(swarm, instance) == ["release-1"]  # a no-op runs none

    dry = swarm_cli("deploy", app, "--instance", instance, "--var", "version=2", "--dry-run", check=True)
    assert "release command of web would run: sh -c" in dry.stdout and marks(swarm, instance) == ["release-1"]

    second = json.loads(swarm_cli("deploy", app, "--instance", instance, "--var", "version=2", "--json",
                                  check=True).stdout)
    assert [(r["service"], r["exit_code"]) for r in second["releases"]] == [("web", 0)]
    assert marks(swarm, instance) == ["release-1", "release-2"] and env(swarm, instance, "web")["VERSION"] == "2"
    history = json.loads(swarm_cli("history", instance, "--json", check=True).stdout)["releases"]
    assert [[r["exit_code"] for r in h.get("releases") or ()] for h in history] == [[0], [0]]
    assert all(r["seconds"] > 0 for h in history for r in h["releases"])


def test_a_failing_release_command_leaves_its_service_as_it_was_and_the_deploy_says_why(
        swarm, swarm_cli, instance, tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(TEMPLATE)
    swarm_cli("deploy", app, "--instance", instance, "--var", "version=1", check=True)
    web = services(swarm, instance)[f"{instance}_web"]

    failed = swarm_cli("deploy", app, "--instance", instance, "--var", "version=bad", check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "the release command of web failed (exit code 3): its service was not changed" in failed.stderr, \
        failed.stderr
    assert "the migration broke" in failed.stderr  # its last lines
    assert services(swarm, instance)[f"{instance}_web"]["Version"] == web["Version"]  # not updated
    assert env(swarm, instance, "web")["VERSION"] == "1" and marks(swarm, instance) == ["release-1", "release-bad"]
    assert sorted(services(swarm, instance)) == [f"{instance}_db", f"{instance}_web"]  # no job left
    history = json.loads(swarm_cli("history", instance, "--json", check=True).stdout)["releases"]
    assert [r["exit_code"] for r in history[-1]["releases"]] == [3]

    hung = swarm_cli("deploy", app, "--instance", instance, "--var", "version=slow",
                     env={"FABRIC_DEPLOYER_RELEASE_TIMEOUT": "3"}, check=False)

    assert hung.returncode == 1 and "the release command of web did not end within 3 s " \
        "(deployer.release_timeout): stopped" in hung.stderr, hung.stderr
    assert env(swarm, instance, "web")["VERSION"] == "1" and marks(swarm, instance)[-1] == "release-slow"
    assert sorted(services(swarm, instance)) == [f"{instance}_db", f"{instance}_web"]  # its job is gone


def test_run_is_a_job_of_the_service_printing_its_output_and_passing_its_exit_code(swarm, swarm_cli, instance,
                                                                                   tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(TEMPLATE)
    swarm_cli("deploy", app, "--instance", instance, "--var", "version=1", check=True)

    ran = swarm_cli("run", instance, "web", "--", "sh", "-c", 'wget -q -O - "http://$DB/cgi-bin/mark?run-$VERSION"; '
                    'echo "to stderr" >&2; exit 4', stdin=subprocess.DEVNULL, check=False)

    assert ran.returncode == 4, ran.stderr
    assert ran.stdout == "marked\n" and "to stderr" in ran.stderr and "Traceback" not in ran.stderr
    assert marks(swarm, instance) == ["release-1", "run-1"]
    assert sorted(services(swarm, instance)) == [f"{instance}_db", f"{instance}_web"]  # no job left

    piped = swarm_cli("run", instance, "web", "--", "cat", input="some input", check=False)
    assert piped.returncode == 1 and "Traceback" not in piped.stderr
    assert "cannot be given input" in piped.stderr, piped.stderr


def test_a_killed_client_takes_its_run_s_job_along(swarm, swarm_host, swarm_cli, instance, tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(TEMPLATE)
    swarm_cli("deploy", app, "--instance", instance, "--var", "version=1", check=True)
    cmd, env = _command("deployer", swarm_host, {}, ["--engine", "swarm", "run", instance, "web", "--", "sleep", "300"],
                        True, None)
    client = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    jobs = lambda: swarm.manager.docker("service", "ls", "-q", "--filter", f"label=deployer.one-off={instance}")  # noqa: E731
    try:
        wait_for(lambda: jobs().stdout.split(), "the run's job to start", timeout=60)
    finally:
        client.kill()
        client.communicate()

    wait_for(lambda: jobs().returncode == 0 and not jobs().stdout.split(), "the run's job to go", timeout=30)
