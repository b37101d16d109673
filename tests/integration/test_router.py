"""The router (issue 14): instances served by domain through one real Caddy per Docker
engine (local/caddy, built from Debian's package by .ci/router-image), over SSH, with TLS
from the router's own CA; swaps that fail no request; routes that outlive the router.

The router is one per engine, named deployer-router: these tests share it (one host, one
state directory), on free ports, and remove it at the end.
"""

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest
from harness import REPO_ROOT, engines
from harness import sshd as sshd_harness
from harness.poll import free_port, wait_for
from support import docker, finish, remove_instance

SHOP = """\
Vars: {version: "1"}
web:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "{instance} $VERSION" > /www/index.html &&
    { [ "$VERSION" = bad ] || echo ok > /www/up; } && exec httpd -f -p 8080 -h /www']
  env: {VERSION: "{version}"}
  route:
    domains: ["{instance}.shop.test", "www.{instance}.shop.test"]
    port: 8080
    health: /up
"""


@pytest.fixture(scope="module")
def router_image(docker_engine):
    res = subprocess.run([str(REPO_ROOT / ".ci" / "router-image")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f".ci/router-image failed:\n{res.stdout}\n{res.stderr}"
    return "local/caddy:latest"


@pytest.fixture(scope="module")
def router(router_image):
    """The router's settings (env vars); the router goes at the end."""
    env = {"FABRIC_DEPLOYER_ROUTER_IMAGE": router_image, "FABRIC_DEPLOYER_ROUTER_HTTP_PORT": str(free_port()),
           "FABRIC_DEPLOYER_ROUTER_HTTPS_PORT": str(free_port()), "FABRIC_DEPLOYER_ROUTER_TLS": "internal",
           "FABRIC_DEPLOYER_ROUTER_DRAIN": "1", "FABRIC_DEPLOYER_HEALTH_TIMEOUT": "8"}  # a busy machine is slow
    yield env
    docker("rm", "-f", "deployer-router")
    docker("network", "rm", "deployer-router")


@pytest.fixture
def cli(deployer_cli, router):
    """deployer_cli with the router's settings (``env``: more, or others)."""
    return lambda *args, env=None, **kwargs: deployer_cli(*args, env={**router, **(env or {})}, **kwargs)


@pytest.fixture
def shop(tmp_path):
    (tmp_path / "shop.yaml").write_text(SHOP)
    return tmp_path / "shop.yaml"


@pytest.fixture
def names(cli):
    """Throwaway instance names (rt...), destroyed at the end (their routes too)."""
    made = []

    def name():
        made.append(f"rt{len(made)}{time.monotonic_ns() % 10**6}")
        return made[-1]

    yield name
    for instance in made:
        cli("destroy", instance)
        remove_instance(instance)


class Client:
    """HTTPS to the router at ``address`` (127.0.0.1: this machine's) as ``domain`` (SNI and
    Host), trusting its CA; with no CA, plain HTTP to its HTTP port (``tls: off``)."""

    def __init__(self, router, ca, domain, address="127.0.0.1"):
        self.port = int(router[f"FABRIC_DEPLOYER_ROUTER_{'HTTPS' if ca else 'HTTP'}_PORT"])
        self.domain, self.context = domain, ssl.create_default_context(cadata=ca) if ca else None
        self.address = address

    def get(self, path="/"):
        """(status, body) of one request on a new connection."""
        client, port, context = self, self.port, self.context

        class Connection(http.client.HTTPSConnection):
            def connect(self):
                raw = socket.create_connection((client.address, port), 10)
                self.sock = context.wrap_socket(raw, server_hostname=client.domain)

        connection = Connection(self.domain, port, timeout=60) if context else http.client.HTTPConnection(
            self.address, port, timeout=60)
        try:
            connection.request("GET", path, headers={"Host": self.domain})
            answer = connection.getresponse()
            return answer.status, answer.read().decode()
        finally:
            connection.close()


@contextlib.contextmanager
def steady(client):
    """A client sending requests without pause while the block runs: what it saw, in
    order (``(status, body)``, or the exception's repr)."""
    seen, done = [], threading.Event()

    def loop():
        while not done.is_set():
            try:
                seen.append(client.get())
            except (OSError, http.client.HTTPException) as e:
                seen.append(repr(e))

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(120)


def failed(seen):
    return [s for s in seen if isinstance(s, str) or s[0] >= 500]


def curl(router, domain, scheme="http", ca=None):
    """curl --resolve through the router: (status, body, redirect)."""
    port = router[f"FABRIC_DEPLOYER_ROUTER_{scheme.upper()}_PORT"]
    args = ["curl", "-s", "--resolve", f"{domain}:{port}:127.0.0.1", "-w", "\n%{http_code} %{redirect_url}",
            *(["--cacert", ca] if ca else []), f"{scheme}://{domain}:{port}/"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
    body, _, last = out.rpartition("\n")
    status, _, redirect = last.partition(" ")
    return int(status), body, redirect


def test_two_instances_are_each_served_at_their_own_domain_through_one_router(cli, shop, names, router, tmp_path):
    a, b = names(), names()
    deployed = cli("deploy", shop, "--instance", a, check=True)
    cli("deploy", shop, "--instance", b, check=True)
    ca = tmp_path / "ca.pem"
    ca.write_text(cli("router", "ca", check=True).stdout)

    assert f"route +{a}.shop.test (web)" in deployed.stdout
    for instance in (a, b):
        for domain in (f"{instance}.shop.test", f"www.{instance}.shop.test"):
            # (a new domain's certificate is issued as the router loads its config: a moment)
            assert wait_for(lambda: curl(router, domain, "https", ca)[:2] == (200, f"{instance} 1\n"), domain)
            https = router["FABRIC_DEPLOYER_ROUTER_HTTPS_PORT"]
            assert curl(router, domain)[::2] == (308, f"https://{domain}:{https}/")
    status, body, _ = curl(router, "nobody.shop.test")
    assert status == 404 and body.count("\n") == 1 and a not in body and b not in body
    assert docker("ps", "-q", "--filter", "name=^deployer-router$").stdout.strip()
    published = docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", f"{a}.web").stdout.strip()
    assert published in ("{}", "null")  # the route's container publishes nothing
    table = json.loads(cli("routes", "--json", check=True).stdout)["routes"]
    assert {(r["domain"], r["instance"], r["container"], r["state"], r["health"]) for r in table} >= {
        (f"{a}.shop.test", a, f"{a}.web", "running", "GET /up"),
        (f"www.{b}.shop.test", b, f"{b}.web", "running", "GET /up")}
    assert f"web is served at {a}.shop.test, www.{a}.shop.test" in cli("status", a, check=True).stdout


def test_a_domain_held_by_another_instance_is_refused_naming_it_and_destroy_frees_it(cli, shop, names, router,
                                                                                    tmp_path):
    a, b = names(), names()
    cli("deploy", shop, "--instance", a, check=True)
    thief = tmp_path / "thief.yaml"
    thief.write_text("web:\n  image: local/busybox\n"
                     "  cmd: [sh, -c, 'mkdir /www && echo thief > /www/index.html && exec httpd -f -p 8080 -h /www']\n"
                     f"  route: {{domains: [{a}.shop.test], port: 8080}}\n")

    refused = cli("deploy", thief, "--instance", b)

    assert refused.returncode == 1 and f"domain {a}.shop.test is served by instance '{a}'" in refused.stderr
    assert refused.stderr.startswith(f"error: host {refused.args[refused.args.index('-H') + 1]}: instance {b}: web: ")
    assert "Traceback" not in refused.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={b}").stdout.strip() == ""  # nothing changed
    cli("destroy", a, check=True)
    assert curl(router, f"{a}.shop.test")[0] == 404  # at once
    cli("deploy", thief, "--instance", b, check=True)
    ca = _ca(cli, tmp_path)
    assert wait_for(lambda: curl(router, f"{a}.shop.test", "https", ca)[:2] == (200, "thief\n"), "b's route")


def _ca(cli, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text(cli("router", "ca", check=True).stdout)
    return ca


def serving(cli, router, template, instance, env=None):
    """The template deployed as the instance: a Client of its first domain."""
    cli("deploy", template, "--instance", instance, env=env, check=True)
    return Client(router, cli("router", "ca", check=True).stdout, f"{instance}.shop.test")


def test_no_request_fails_during_a_recreate_a_failed_health_check_and_a_rollback(cli, shop, names, router):
    a = names()
    client = serving(cli, router, shop, a)

    with steady(client) as seen:
        time.sleep(0.5)
        cli("deploy", shop, "--instance", a, "--var", "version=2", check=True)
        right_after = client.get()
        refused = cli("deploy", shop, "--instance", a, "--var", "version=bad")
        after_refused = client.get()
        cli("rollback", a, check=True)
        after_rollback = client.get()
        time.sleep(0.5)

    assert failed(seen) == [] and len(seen) > 20, seen[-5:]
    assert right_after == (200, f"{a} 2\n")
    assert refused.returncode == 1 and "failed its route's health check" in refused.stderr
    assert "GET /up: HTTP 404" in refused.stderr and "the route did not move" in refused.stderr
    assert after_refused == (200, f"{a} 2\n")  # the old one kept serving
    assert after_rollback == (200, f"{a} 1\n")
    bodies = [body for _, body in seen]
    assert {f"{a} 1\n", f"{a} 2\n"} == set(bodies)


def test_a_service_renamed_in_the_template_takes_its_domain_without_a_failed_request(cli, shop, names, router,
                                                                                    tmp_path):
    """The service the template dropped serves until the new one does, then goes, drained."""
    a = names()
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(SHOP.replace("web:", "app:").replace('version: "1"', 'version: "2"'))
    client = serving(cli, router, shop, a)

    with steady(client) as seen:
        time.sleep(0.5)
        deployed = cli("deploy", renamed, "--instance", a, check=True)
        right_after = client.get()
        time.sleep(0.3)

    assert failed(seen) == [] and {status for status, _ in seen} == {200} and len(seen) > 20, seen[-5:]
    assert right_after == (200, f"{a} 2\n")
    assert docker("ps", "-a", "--filter", f"label=deployer.instance={a}", "--format", "{{.Names}}"
                  ).stdout.split() == [f"{a}.app"]
    assert "not in the template" in deployed.stdout


def test_the_router_restarted_or_removed_by_hand_serves_the_same_routes(cli, shop, names, router, tmp_path):
    a = names()
    cli("deploy", shop, "--instance", a, check=True)
    ca = _ca(cli, tmp_path)

    def served():
        return wait_for(lambda: curl(router, f"{a}.shop.test", "https", ca)[:2] == (200, f"{a} 1\n"), "the route")

    assert docker("restart", "deployer-router").returncode == 0
    assert served()
    docker("rm", "-f", "deployer-router")
    docker("network", "rm", "deployer-router")
    assert "restarted" in cli("router", "restart", check=True).stdout
    assert served()
    docker("rm", "-f", "deployer-router")
    docker("network", "rm", "deployer-router")
    assert "nothing was changed" in cli("deploy", shop, "--instance", a, check=True).stdout
    assert served()
    assert "running" in cli("router", "status", check=True).stdout
    status = json.loads(cli("router", "status", "--json", check=True).stdout)
    assert status["container"] == "deployer-router" and status["state"] == "running" and a in status["instances"]
    logs = cli("router", "logs", "--tail", "3", check=True)
    assert len(logs.stdout.splitlines() + logs.stderr.splitlines()) == 3  # Caddy logs on stderr


@pytest.fixture
def own_engine(busybox_image, router_image, router, cli_on, tmp_path_factory):
    """A host of its own (an extra engine with the router's image, behind an sshd):
    (engine, settings, run) with run(*args, **kwargs) as cli's, with the router's settings
    on ports of its own. Its router is not the module's."""
    with engines.extra_engine(busybox_image) as engine:
        assert not engines.load_image([engine], router_image, engine.root / "router.tar")
        with sshd_harness.running(tmp_path_factory.mktemp("host-r"), {"DOCKER_HOST": engine.url}) as host:
            settings = {**router, "FABRIC_DEPLOYER_ROUTER_HTTP_PORT": str(free_port()),
                        "FABRIC_DEPLOYER_ROUTER_HTTPS_PORT": str(free_port())}
            yield engine, settings, lambda *args, env=None, **kwargs: cli_on(host)(
                *args, env={**settings, **(env or {})}, **kwargs)


def test_a_restarted_docker_engine_brings_the_router_back_with_its_routes(own_engine, tmp_path, shop):
    engine, settings, run = own_engine
    run("deploy", shop, "--instance", "rtr", check=True)
    ca = tmp_path / "ca.pem"
    ca.write_text(run("router", "ca", check=True).stdout)

    engine.restart()

    assert wait_for(lambda: curl(settings, "rtr.shop.test", "https", ca)[:2] == (200, "rtr 1\n"),
                    "the route after the engine's restart", timeout=60)


def test_no_request_fails_while_the_router_reloads_its_config(own_engine, shop):
    """Every route change on the host is a reload of the router's config (``caddy reload``,
    the command deployer runs): here 60 in a row, under two clients sending requests
    without pause, each on a new connection. Caddy 2.6 takes a new listening socket on each;
    without the router's sysctl (route.py) a few connections were reset each time."""
    engine, settings, run = own_engine
    run("deploy", shop, "--instance", "rtl", env={"FABRIC_DEPLOYER_ROUTER_TLS": "off"}, check=True)
    plain = Client(settings, None, "rtl.shop.test")
    reload = ["docker", "-H", engine.url, "exec", "deployer-router", "caddy", "reload", "--config",
              "/deployer/caddy.json", "--force"]
    assert wait_for(lambda: plain.get() == (200, "rtl 1\n"), "the route")

    with steady(plain) as seen, steady(plain) as also:
        reloads = [subprocess.run(reload, capture_output=True, timeout=60).returncode for _ in range(60)]

    assert reloads == [0] * 60 and len(seen) + len(also) > 600
    assert failed(seen + also) == []


def test_a_stop_first_service_answers_every_request_of_its_swap_later(cli, names, router, tmp_path):
    a = names()
    stateful = tmp_path / "stateful.yaml"
    stateful.write_text(SHOP.replace("  env:", "  volumes: [/data]\n  env:"))  # a volume: replaced stop-first
    client = serving(cli, router, stateful, a)

    with steady(client) as seen:
        cli("deploy", stateful, "--instance", a, "--var", "version=2", check=True)
        right_after = client.get()

    assert failed(seen) == [] and right_after == (200, f"{a} 2\n"), seen[-5:]
    table = json.loads(cli("routes", "--json", check=True).stdout)["routes"]
    assert {r["upstream"] for r in table if r["instance"] == a} == {f"web.{a}:8080"}  # its service alias


def test_a_dry_run_says_how_routes_would_change_and_changes_nothing(cli, shop, names):
    a = names()

    planned = cli("deploy", shop, "--instance", a, "--dry-run", "--json", check=True)

    assert json.loads(planned.stdout)["routes"] == [f"+{a}.shop.test (web)", f"+www.{a}.shop.test (web)"]
    assert all(r["instance"] != a for r in json.loads(cli("routes", "--json", check=True).stdout)["routes"])


def test_two_instances_deployed_at_once_both_get_their_routes(deployer_started, cli, router, shop, names):
    a, b = names(), names()

    runs = [deployer_started("deploy", shop, "--instance", name, env=router) for name in (a, b)]

    for run in runs:
        code, out, err = finish(run)
        assert code == 0, out + err
    held = {r["domain"] for r in json.loads(cli("routes", "--json", check=True).stdout)["routes"]}
    assert {f"{a}.shop.test", f"{b}.shop.test", f"www.{a}.shop.test", f"www.{b}.shop.test"} <= held


SLOW = SHOP.replace(  # and a CGI answering after 3 s
    "&& exec httpd", '&& mkdir /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\nsleep 3\\n'
    'echo slow \\$VERSION\\n" > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow && exec httpd')


def test_a_request_begun_before_its_route_moved_finishes_on_the_old_container(cli, names, router, tmp_path):
    """A long request (3 s) in flight when the route moves: the old container serves it
    to its end (the drain is longer)."""
    a = names()
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    drain = {"FABRIC_DEPLOYER_ROUTER_DRAIN": "6"}  # longer than the request
    client = serving(cli, router, slow, a, drain)
    assert client.get("/cgi-bin/slow") == (200, "slow 1\n")
    answers = []

    begun = threading.Thread(target=lambda: answers.append(client.get("/cgi-bin/slow")))
    begun.start()
    time.sleep(0.5)
    deployed = cli("deploy", slow, "--instance", a, "--var", "version=2", env=drain, check=True)
    begun.join(60)

    assert "recreate" in deployed.stdout
    assert answers == [(200, "slow 1\n")] and client.get() == (200, f"{a} 2\n")


def test_a_failing_release_command_never_moves_the_route_and_fails_no_request(cli, names, router, tmp_path):
    """Issue 18 through the router: the release command runs in the new spec before any of
    web's containers is replaced; when it fails, the route stays on the old container."""
    template = tmp_path / "shop.yaml"
    template.write_text(SHOP.replace('  env: {VERSION: "{version}"}\n', '  env: {VERSION: "{version}"}\n'
                                     '  release: [sh, -c, \'echo "migrating to $VERSION"; [ "$VERSION" != 3 ]\']\n'))
    a = names()
    client = serving(cli, router, template, a)

    with steady(client) as seen:
        time.sleep(0.5)
        refused = cli("deploy", template, "--instance", a, "--var", "version=3")
        after = client.get()
        time.sleep(0.5)

    assert refused.returncode == 1, refused.stderr
    assert "the release command of web failed (exit code 1): none of its containers was replaced" in refused.stderr
    assert "migrating to 3" in refused.stderr
    assert failed(seen) == [] and len(seen) > 10, seen[-5:]
    assert after == (200, f"{a} 1\n") and {body for _, body in seen} == {f"{a} 1\n"}
