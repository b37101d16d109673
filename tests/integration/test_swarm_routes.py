"""Routes on a swarm (issue 16): the router is a global service, a Caddy task on every node
of a real two-node swarm (harness/swarm.py), its ports in host mode; a routed service
answers through the router on every node's address, rolls (start-first, or stop-first)
with no failed request under steady clients (one a node: these fail when the router
resolves a service's name once a minute instead of every second), and a change of the
route table is live on every node when the deploy returns; destroy takes the instance's
routes away."""

import pathlib
import secrets

import pytest
from harness.engines import load_image
from harness.poll import wait_for
from test_router import Client, failed, router_image, steady  # noqa: F401 (router_image: a fixture)

SHOP = """\
web:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "{instance} $VERSION" > /www/index.html && exec httpd -f -p 8080 -h /www']
  env: {VERSION: "{version}"}
  route: {domains: [{domains}], port: 8080}
"""
PORTS = {"FABRIC_DEPLOYER_ROUTER_HTTP_PORT": "18080", "FABRIC_DEPLOYER_ROUTER_HTTPS_PORT": "18443"}  # each node's own


@pytest.fixture(scope="module")
def router(swarm, router_image, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    """The router's settings (env vars), its image on every node; the router goes at the end."""
    errors = load_image([node.engine for node in swarm.nodes], router_image, tmp_path_factory.mktemp("caddy") / "c.tar")
    assert not errors, errors
    yield {"FABRIC_DEPLOYER_ROUTER_IMAGE": router_image, "FABRIC_DEPLOYER_ROUTER_TLS": "internal",
           "FABRIC_DEPLOYER_HEALTH_TIMEOUT": "30", **PORTS}
    swarm.manager.docker("service", "rm", "deployer-router")


@pytest.fixture
def cli(swarm_host, cli_on, router):
    run = cli_on(swarm_host)
    return lambda *args, env=None, **kwargs: run("--engine", "swarm", *args, env={**router, **(env or {})}, **kwargs)


@pytest.fixture
def instance(swarm, cli):
    """A throwaway instance name, destroyed at the end (its routes too)."""
    name = f"sr{secrets.token_hex(3)}"
    yield name
    cli("destroy", name)


def shop(tmp_path, instance, version, *domains):
    path = tmp_path / f"shop{version}.yaml"
    path.write_text(SHOP.replace("{domains}", ", ".join(domains)).replace("{version}", version))
    return path


def ca_of(node):
    """The root certificate of the node's router's own CA, read from its volume."""
    mountpoint = node.docker("volume", "inspect", "--format", "{{.Mountpoint}}", "deployer-router").stdout.strip()
    path = pathlib.Path(mountpoint) / "data/caddy/pki/authorities/local/root.crt"
    wait_for(path.exists, f"the CA of {node.name}'s router")
    return path.read_text()


def answer(router, node, domain, https=True):
    """(status, body) of a GET through the node's router (HTTPS trusting its own CA; else HTTP)."""
    client = Client(router, ca_of(node) if https else None, domain, node.address)
    try:
        return client.get()
    except OSError as e:
        return repr(e), ""


def test_a_routed_service_answers_on_every_node_and_rolls_with_no_failed_request(swarm, cli, router, instance,
                                                                                 tmp_path):
    domain = f"{instance}.shop.test"
    deployed = cli("deploy", shop(tmp_path, instance, "1", domain), "--instance", instance, check=True)
    assert f"+{domain} (web)" in deployed.stdout
    for node in swarm.nodes:  # the route is live on every node when the deploy returns
        assert answer(router, node, domain) == (200, f"{instance} 1\n"), node.name
        assert answer(router, node, "nobody.shop.test", https=False)[0] == 404

    with steady(Client(router, ca_of(swarm.manager), domain, swarm.manager.address)) as on_manager, \
            steady(Client(router, ca_of(swarm.worker), domain, swarm.worker.address)) as on_worker:
        cli("deploy", shop(tmp_path, instance, "2", domain), "--instance", instance, check=True)
    for seen in (on_manager, on_worker):
        assert len(seen) > 20 and not failed(seen), (len(seen), failed(seen)[:5])
        assert seen[0] == (200, f"{instance} 1\n") and seen[-1] == (200, f"{instance} 2\n")
    again = cli("deploy", shop(tmp_path, instance, "2", domain), "--instance", instance, check=True)
    assert "unchanged" in again.stdout and "route" not in again.stdout  # a rollout moved no route of the table


def test_a_service_replaced_stop_first_keeps_its_route_s_requests_waiting_for_the_new_task(swarm, cli, router,
                                                                                          instance, tmp_path):
    domain = f"{instance}.shop.test"
    fixed = shop(tmp_path, instance, "1", domain).read_text() + '  ports: ["18090:8080"]\n'  # so stop-first
    (tmp_path / "v1.yaml").write_text(fixed)
    (tmp_path / "v2.yaml").write_text(fixed.replace('VERSION: "1"', 'VERSION: "2"'))
    cli("deploy", tmp_path / "v1.yaml", "--instance", instance, check=True)
    assert swarm.manager.docker("service", "inspect", "--format", "{{.Spec.UpdateConfig.Order}}",
                                f"{instance}_web").stdout.strip() == "stop-first"

    with steady(Client(router, ca_of(swarm.worker), domain, swarm.worker.address)) as seen:
        cli("deploy", tmp_path / "v2.yaml", "--instance", instance, check=True)
    assert len(seen) > 10 and not failed(seen), (len(seen), failed(seen)[:5])
    assert seen[-1] == (200, f"{instance} 2\n")


def test_a_route_table_change_is_live_on_every_node_when_the_deploy_returns_and_destroy_removes_it(
        swarm, cli, router, instance, tmp_path):
    old, new = f"{instance}.shop.test", f"new.{instance}.shop.test"
    cli("deploy", shop(tmp_path, instance, "1", old), "--instance", instance, check=True)
    changed = cli("deploy", shop(tmp_path, instance, "1", new), "--instance", instance, check=True)
    assert f"+{new} (web)" in changed.stdout and f"-{old}" in changed.stdout
    for node in swarm.nodes:
        assert answer(router, node, new) == (200, f"{instance} 1\n"), node.name
        assert answer(router, node, old, https=False)[0] == 404, node.name
    listed = cli("routes", check=True).stdout
    assert new in listed and f"web.{instance}:8080" in listed and "running" in listed

    refused = cli("router", "ca", check=False)
    assert refused.returncode == 1 and "each node's router has its own CA" in refused.stderr
    assert "Traceback" not in refused.stderr
    cli("router", "restart", check=True)  # every node's router loads the table again
    for node in swarm.nodes:
        assert answer(router, node, new) == (200, f"{instance} 1\n"), node.name

    cli("destroy", instance, check=True)
    for node in swarm.nodes:
        assert answer(router, node, new, https=False)[0] == 404, node.name
    assert "deployer-router" in swarm.manager.docker("service", "ls", "--format", "{{.Name}}").stdout  # it stays


def test_replicas_spread_over_the_nodes_answer_through_the_route_and_roll_with_no_failed_request(
        swarm, cli, router, instance, tmp_path):
    """The issue's whole promise at once: a routed service of 4 replicas, on both nodes, a
    route balancing them, an env change rolling them (two at a time) under steady clients."""
    domain = f"{instance}.shop.test"
    text = shop(tmp_path, instance, "1", domain).read_text().replace(
        '"{instance} $VERSION"', '"{instance} $VERSION $(hostname)"') + "  replicas: 4\n"
    (tmp_path / "r1.yaml").write_text(text)
    (tmp_path / "r2.yaml").write_text(text.replace('VERSION: "1"', 'VERSION: "2"'))
    cli("deploy", tmp_path / "r1.yaml", "--instance", instance, check=True)

    placed = swarm.manager.docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.Node}}",
                                  f"{instance}_web").stdout.split()
    assert len(placed) == 4 and len(set(placed)) == 2, placed  # spread over both nodes
    hosts = {answer(router, swarm.worker, domain)[1].split()[-1] for _ in range(40)}
    assert len(hosts) > 1, hosts  # the route balances the replicas

    with steady(Client(router, ca_of(swarm.manager), domain, swarm.manager.address)) as on_manager, \
            steady(Client(router, ca_of(swarm.worker), domain, swarm.worker.address)) as on_worker:
        rolled = cli("deploy", tmp_path / "r2.yaml", "--instance", instance, env={"FABRIC_DEPLOYER_ROLLING_BATCH": "2"},
                     check=True)
    assert rolled.stdout.count("env.VERSION changed") == 4
    for seen in (on_manager, on_worker):
        assert len(seen) > 20 and not failed(seen), (len(seen), failed(seen)[:5])
        assert seen[-1][1].startswith(f"{instance} 2 ")
