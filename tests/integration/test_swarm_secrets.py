"""Secrets on a real two-node swarm (harness/swarm.py, the fixtures of test_swarm.py): a
``{secret: NAME}`` value is a Swarm secret named by a hash of it, the service's process sees
it as the env var the template names, and neither ``docker service inspect``, the
container's config nor the release configs hold it; a new value is a new secret and a rolling update, the old one
kept for a rollback (deployer.retain); destroy leaves none."""

import base64
import json

import pytest

from test_swarm import instance, services, swarm_cli  # noqa: F401 (fixtures)

TEMPLATE = """\
app:
  image: local/busybox
  cmd: [sh, -c, 'printf %s "$TOKEN" >/tmp/token; printf %s "$PLAIN" >/tmp/plain; exec sleep 3600']
  env: {TOKEN: {secret: TOKEN}, PLAIN: visible}
"""
HOSTILE = """it's "$(touch /tmp/swpwned)"; `id` \\ done\n  two  spaces\n\n"""


def seen(swarm, instance, path):
    """The file ``path`` in the instance's running container, wherever it runs."""
    for node in swarm.nodes:
        ids = node.docker("ps", "-q", "--filter", f"label=deployer.instance={instance}").stdout.split()
        if ids:
            return node, ids[0], node.docker("exec", ids[0], "cat", path).stdout
    raise AssertionError(f"no running container of {instance} on any node")


def released(swarm, instance):
    """Every release config of the instance, as ``docker config inspect`` shows it (decoded)."""
    ids = swarm.manager.docker("config", "ls", "-q", "--filter", f"label=deployer.instance={instance}").stdout.split()
    configs = json.loads(swarm.manager.docker("config", "inspect", *ids).stdout)
    return "".join(base64.b64decode(c["Spec"]["Data"]).decode() for c in configs)


def secrets_of(swarm, instance):
    return swarm.manager.docker("secret", "ls", "--filter", f"label=deployer.instance={instance}",
                                "--format", "{{.Name}}").stdout.split()


def test_a_secret_reaches_the_process_as_its_env_var_and_no_spec_holds_it_a_new_value_replaces_it_destroy_leaves_none(
        swarm, swarm_cli, instance, tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(TEMPLATE)

    swarm_cli("deploy", app, "--instance", instance, env={"TOKEN": HOSTILE}, check=True)

    node, container, token = seen(swarm, instance, "/tmp/token")
    assert token == HOSTILE and node.docker("exec", container, "cat", "/tmp/plain").stdout == "visible"
    (first,) = secrets_of(swarm, instance)
    inspected = swarm.manager.docker("service", "inspect", f"{instance}_app").stdout
    assert "it's" not in inspected and "two  spaces" not in inspected and first in inspected
    assert "it's" not in node.docker("inspect", container).stdout  # nor in the container's config
    spec = services(swarm, instance)[f"{instance}_app"]
    assert "PLAIN=visible" in spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    version = spec["Version"]["Index"]

    same = swarm_cli("deploy", app, "--instance", instance, env={"TOKEN": HOSTILE}, check=True)
    assert "unchanged" in same.stdout
    assert "it's" not in released(swarm, instance)  # the releases hold it sealed
    assert "unchanged" in swarm_cli("redeploy", instance, check=True).stdout  # from the sealed state, no value given
    assert services(swarm, instance)[f"{instance}_app"]["Version"]["Index"] == version

    swarm_cli("deploy", app, "--instance", instance, env={"TOKEN": "second $(value)"}, check=True)

    updated = services(swarm, instance)[f"{instance}_app"]
    assert updated["UpdateStatus"]["State"] == "completed"
    assert seen(swarm, instance, "/tmp/token")[2] == "second $(value)"
    (second,) = set(secrets_of(swarm, instance)) - {first}  # the first, unused now, is kept (deployer.retain)
    assert "second $(value)" not in json.dumps(updated) and "second $(value)" not in released(swarm, instance)
    swarm_cli("rollback", instance, check=True)  # to the first value: its secret is there, no value given
    assert seen(swarm, instance, "/tmp/token")[2] == HOSTILE

    swarm_cli("deploy", app, "--instance", instance, env={"TOKEN": "third", "FABRIC_DEPLOYER_RETAIN": "0"}, check=True)
    assert len(secrets_of(swarm, instance)) == 1  # none unused kept
    back = swarm_cli("rollback", instance, check=False)  # the first value's secret is gone, and it was not given
    assert back.returncode == 1 and "is no longer on the swarm" in back.stderr and "Traceback" not in back.stderr
    assert seen(swarm, instance, "/tmp/token")[2] == "third"  # nothing changed

    swarm_cli("destroy", instance, "--yes", check=True)

    assert secrets_of(swarm, instance) == []


@pytest.fixture
def shell_less(swarm, tmp_path):
    """``local/noshell`` on every node: busybox alone, at /busybox, so no /bin/sh."""
    manager = swarm.manager
    made = manager.docker("create", "local/busybox", "true").stdout.strip()
    manager.docker("cp", f"{made}:/bin/busybox", str(tmp_path / "busybox"))
    manager.docker("rm", made)
    (tmp_path / "Dockerfile").write_text('FROM scratch\nCOPY busybox /busybox\nCMD ["/busybox", "sleep", "3600"]\n')
    for node in swarm.nodes:
        assert node.docker("build", "-q", "-t", "local/noshell", str(tmp_path), timeout=120).returncode == 0
    yield "local/noshell"
    for node in swarm.nodes:
        node.docker("rmi", "-f", "local/noshell")


def test_an_image_without_a_shell_cannot_take_secrets_and_the_deploy_says_which_service_and_why(
        swarm, swarm_cli, instance, tmp_path, shell_less):
    app = tmp_path / "app.yaml"
    app.write_text(f"app: {{image: {shell_less}, env: {{TOKEN: {{secret: TOKEN}}}}}}\n")

    failed = swarm_cli("deploy", app, "--instance", instance, env={"TOKEN": "t"}, check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"app: its image {shell_less} has no /bin/sh, which on a swarm reads its secrets" in failed.stderr, \
        failed.stderr
    assert services(swarm, instance) == {} and secrets_of(swarm, instance) == []  # asked before anything changed
