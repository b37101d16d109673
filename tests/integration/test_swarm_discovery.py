"""Discovery across instances on a real two-node swarm (issue 16, harness/swarm.py): an
instance exposes another instance's registered endpoint by the same names as on one host;
its task, on the other node than the provider's, reaches that service through the
provider's service network, and none of the provider's other services; the consumer
changes only when the endpoint does; a provider not deployed yet is an error naming the
endpoint, and a provider still exposed is not destroyed."""

import secrets

import pytest
from harness.poll import wait_for
from support import GET
from test_swarm import env, instance, services, swarm_cli  # noqa: F401 (fixtures)

PROVIDER = """\
db:
  image: local/busybox
  cmd: [sh, -c, 'echo "db of {instance}" >/tmp/index.html; exec httpd -f -p PORT -h /tmp']
  register: {PORT: http}
  placement: {constraints: ["node.role == manager"]}
other:
  image: local/busybox
  cmd: [sh, -c, 'echo private >/tmp/index.html; exec httpd -f -p 8080 -h /tmp']
"""
CONSUMER = """\
app:
  image: local/busybox
  cmd: sleep 3600
  expose: {"PROVIDER/db:http": DB}
  placement: {constraints: ["node.role == worker"]}
"""


@pytest.fixture
def provider(swarm):
    """A throwaway instance name for the provider; what is left of it on the swarm goes at the
    end, after the consumer's (``instance``, torn down first), whose tasks leave its network."""
    name = f"sp{secrets.token_hex(3)}"
    yield name
    manager = swarm.manager
    for kind in ("service", "config", "network"):
        ids = manager.docker(kind, "ls", "-q", "--filter", f"label=deployer.instance={name}").stdout.split()
        if ids:
            wait_for(lambda: manager.docker(kind, "rm", *ids).returncode == 0, f"{kind}s of {name} removed", 60)


def written(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def fetch(swarm, instance, service, address):
    """``(node, what an HTTP GET of address got, or None)``, from the service's task wherever it runs."""
    for node in swarm.nodes:
        ids = node.docker("ps", "-q", "--filter", f"label=deployer.instance={instance}",
                          "--filter", f"label=deployer.service={service}").stdout.split()
        if ids:
            got = node.docker("exec", ids[0], "sh", "-c", GET, "get", address, "5")
            return node.name, got.stdout if got.returncode == 0 else None
    raise AssertionError(f"no container of {instance}'s {service} on any node")


def version(swarm, instance, service):
    return services(swarm, instance)[f"{instance}_{service}"]["Version"]["Index"]


def test_a_provider_not_deployed_yet_is_an_error_naming_the_endpoint_before_anything_changes(
        swarm, swarm_cli, provider, instance, tmp_path):
    consumer = written(tmp_path, "app.yaml", CONSUMER.replace("PROVIDER", provider))

    refused = swarm_cli("deploy", consumer, "--instance", instance, check=False)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{consumer}: app.expose: '{provider}/db:http' names no registered endpoint (known: " in refused.stderr
    assert services(swarm, instance) == {}


def test_an_instance_reaches_another_s_endpoint_from_the_other_node_and_nothing_else_of_it(
        swarm, swarm_cli, provider, instance, tmp_path):
    db = written(tmp_path, "db.yaml", PROVIDER.replace("PORT", "8080"))
    consumer = written(tmp_path, "app.yaml", CONSUMER.replace("PROVIDER", provider))
    swarm_cli("deploy", db, "--instance", provider, check=True)

    swarm_cli("deploy", consumer, "--instance", instance, check=True)

    assert env(services(swarm, instance)[f"{instance}_app"])["DB"] == f"db.{provider}:8080"  # as on one host
    assert fetch(swarm, instance, "app", f"db.{provider}:8080") == (swarm.worker.name, f"db of {provider}\n")
    assert fetch(swarm, instance, "app", f"other.{provider}:8080") == (swarm.worker.name, None)  # its network alone
    assert fetch(swarm, provider, "other", f"db.{provider}:8080")[1] == f"db of {provider}\n"  # (other does run)

    before = version(swarm, instance, "app")
    again = swarm_cli("deploy", db, "--instance", provider, check=True)
    assert "unchanged" in again.stdout and version(swarm, instance, "app") == before  # the consumer untouched
    again = swarm_cli("deploy", consumer, "--instance", instance, check=True)
    assert "unchanged" in again.stdout and version(swarm, instance, "app") == before

    moved = written(tmp_path, "db2.yaml", PROVIDER.replace("PORT", "8081"))
    swarm_cli("deploy", moved, "--instance", provider, check=True)
    updated = swarm_cli("deploy", consumer, "--instance", instance, check=True)  # the endpoint moved: app follows
    assert env(services(swarm, instance)[f"{instance}_app"])["DB"] == f"db.{provider}:8081", updated.stdout
    assert fetch(swarm, instance, "app", f"db.{provider}:8081") == (swarm.worker.name, f"db of {provider}\n")


def test_a_provider_still_exposed_is_not_destroyed_and_is_once_its_consumer_is_gone(
        swarm, swarm_cli, provider, instance, tmp_path):
    swarm_cli("deploy", written(tmp_path, "db.yaml", PROVIDER.replace("PORT", "8080")), "--instance", provider,
              check=True)
    swarm_cli("deploy", written(tmp_path, "app.yaml", CONSUMER.replace("PROVIDER", provider)), "--instance", instance,
              check=True)

    refused = swarm_cli("destroy", provider, "--yes", check=False)

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"the endpoints of {provider} are exposed by other instances' services ({instance}/app, as " \
           "instance/service)" in refused.stderr, refused.stderr
    assert sorted(services(swarm, provider)) == [f"{provider}_db", f"{provider}_other"]
    assert fetch(swarm, instance, "app", f"db.{provider}:8080")[1] == f"db of {provider}\n"

    swarm_cli("destroy", instance, "--yes", check=True)
    swarm_cli("destroy", provider, "--yes", check=True)
    for kind in ("service", "network", "config"):
        left = swarm.manager.docker(kind, "ls", "-q", "--filter", f"label=deployer.instance={provider}")
        assert left.stdout.split() == [], kind
