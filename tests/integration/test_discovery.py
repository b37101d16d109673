"""Service discovery on one host: register names endpoints, expose hands them over (over
the instance's private network; test_isolation.py: that no other instance reaches them)."""

import json
import urllib.request

from support import docker, env_of, fetch, inspect

DB_AND_APP = """\
db:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "db of {instance}" > /www/index.html && exec httpd -f -p 8080 -h /www']
  register: {8080: web, "9000": {name: admin, wan: true}}
app:
  image: local/busybox
  cmd: sleep 3600
  expose:
    "db:web": DB_ADDR
    "db:admin": {env: ADMIN_URL, format: "http://{host}:{port}/admin"}
"""


def endpoint(instance):
    return env_of(f"{instance}.app")["DB_ADDR"]


def fetch_from_app(instance, address):
    return fetch(f"{instance}.app", address)


def test_an_exposed_endpoint_answers_from_inside_the_app_and_keeps_its_address(deployer_cli, tmp_path, unique_instance):
    template = tmp_path / "d.yaml"
    template.write_text(DB_AND_APP)
    result = deployer_cli("deploy", template, "--instance", unique_instance, check=True)

    address = endpoint(unique_instance)
    assert address == f"db.{unique_instance}:8080"  # the service's alias on the instance's network, no host port
    assert result.stdout.index("create  db") < result.stdout.index("create  app")  # db first: app exposes it
    assert fetch_from_app(unique_instance, address) == f"db of {unique_instance}\n"
    admin = env_of(f"{unique_instance}.app")["ADMIN_URL"]
    assert admin.startswith("http://") and admin.endswith("/admin")
    bindings = json.loads(inspect(f"{unique_instance}.db", "{{json .HostConfig.PortBindings}}"))
    assert "8080/tcp" not in bindings
    assert bindings["9000/tcp"][0]["HostIp"] == "0.0.0.0"  # wan

    deployer_cli("deploy", template, "--instance", unique_instance, "--force", check=True)

    assert endpoint(unique_instance) == address
    assert fetch_from_app(unique_instance, address) == f"db of {unique_instance}\n"
    listed = deployer_cli("endpoints", unique_instance, check=True).stdout
    assert f"db:web    {address}" in listed and "none (instance network)" in listed and "all interfaces" in listed


def test_two_instances_get_their_own_ports_and_each_sees_its_own_db(deployer_cli, tmp_path, unique_instance, other_instance):
    template = tmp_path / "d.yaml"
    template.write_text(DB_AND_APP)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    deployer_cli("deploy", template, "--instance", other_instance, check=True)

    first, second = endpoint(unique_instance), endpoint(other_instance)

    assert first != second
    assert fetch_from_app(unique_instance, first) == f"db of {unique_instance}\n"
    assert fetch_from_app(other_instance, second) == f"db of {other_instance}\n"
    endpoints = json.loads(deployer_cli("endpoints", other_instance, "--json", check=True).stdout)["endpoints"]
    assert endpoints["db:web"] == {"address": "", "host_port": 0, "port": 8080, "wan": False}  # no host port


def test_an_instance_exposes_another_instances_endpoint(deployer_cli, tmp_path, unique_instance, other_instance):
    (tmp_path / "d.yaml").write_text(DB_AND_APP)
    deployer_cli("deploy", tmp_path / "d.yaml", "--instance", unique_instance, check=True)
    client = tmp_path / "client.yaml"
    client.write_text(f'app:\n  image: local/busybox\n  cmd: sleep 3600\n  expose: {{"{unique_instance}/db:web": DB_ADDR}}\n')

    deployer_cli("deploy", client, "--instance", other_instance, check=True)

    assert endpoint(other_instance) == endpoint(unique_instance)
    assert fetch_from_app(other_instance, endpoint(other_instance)) == f"db of {unique_instance}\n"


def test_a_cycle_or_an_unknown_reference_fails_before_anything_changes(deployer_cli, tmp_path, unique_instance):
    cycle = tmp_path / "cycle.yaml"
    cycle.write_text(
        "a: {image: local/busybox, register: {80: web}, expose: {'b:web': B}}\n"
        "b: {image: local/busybox, register: {80: web}, expose: {'a:web': A}}\n"
    )
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        "app: {image: local/busybox, expose: {'db:drvier': X}}\ndb: {image: local/busybox, register: {80: driver}}\n"
    )

    looped = deployer_cli("deploy", cycle, "--instance", unique_instance)
    missing = deployer_cli("deploy", unknown, "--instance", unique_instance)

    assert looped.returncode == 2 and "services expose each other in a cycle: a -> b -> a" in looped.stderr
    assert missing.returncode == 2
    assert "app.expose: 'db:drvier' names no registered endpoint (known: db:driver)" in missing.stderr
    assert docker("ps", "-aq", "--filter", f"label=deployer.instance={unique_instance}").stdout == ""


WAN_REPLICAS = """\
api:
  image: local/busybox
  replicas: 3
  cmd: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
  register: {8080: {name: http, wan: true}}
app:
  image: local/busybox
  cmd: sleep 3600
  expose: {"api:http": {env: API_URLS, format: "http://{host}:{port}/"}}
"""


def host_port(container):
    """The host port a container publishes its 8080 on (0: none)."""
    bindings = json.loads(inspect(container, "{{json .HostConfig.PortBindings}}")) or {}
    return int(bindings["8080/tcp"][0]["HostPort"]) if "8080/tcp" in bindings else 0


def get(port):
    """The body at http://127.0.0.1:PORT/ (None: nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return None


def test_a_wan_replicated_service_publishes_a_port_a_replica_and_scaling_down_recreates_its_consumer(
        deployer_cli, tmp_path, unique_instance):
    template = tmp_path / "w.yaml"
    template.write_text(WAN_REPLICAS)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    replicas = [f"{unique_instance}.api.{n}" for n in (1, 2, 3)]

    ports = [host_port(name) for name in replicas]
    assert len(set(ports)) == 3 and all(ports), ports
    hostnames = [inspect(name, "{{.Config.Hostname}}") for name in replicas]
    assert [get(port) for port in ports] == [f"{h}\n" for h in hostnames] and len(set(hostnames)) == 3
    urls = env_of(f"{unique_instance}.app")["API_URLS"].split(",")
    assert urls == [f"http://api.{n}.{unique_instance}:8080/" for n in (1, 2, 3)]
    assert [fetch(f"{unique_instance}.app", url[7:-1]) for url in urls] == [f"{h}\n" for h in hostnames]
    listed = json.loads(deployer_cli("endpoints", unique_instance, "--json", check=True).stdout)["endpoints"]
    assert listed["api:http"]["host_ports"] == ports and listed["api:http"]["host_port"] == ports[0]
    assert ", ".join(f"0.0.0.0:{p}" for p in ports) in deployer_cli("endpoints", unique_instance, check=True).stdout

    scaled = deployer_cli("scale", unique_instance, "api=2", check=True)

    assert [host_port(name) for name in replicas[:2]] == ports[:2]  # each replica kept its port
    assert docker("inspect", replicas[2]).returncode != 0 and get(ports[2]) is None
    assert "endpoint api:http moved (env.API_URLS)" in scaled.stdout
    assert env_of(f"{unique_instance}.app")["API_URLS"] == ",".join(urls[:2])
    again = deployer_cli("deploy", template, "--instance", unique_instance, check=True)  # the scale holds: no change
    assert "recreate" not in again.stdout and "create" not in again.stdout

    single = deployer_cli("scale", unique_instance, "api=1", check=True)  # replicas becoming one container

    port = host_port(f"{unique_instance}.api")
    assert port not in ports[:2] and get(port) == f"{inspect(f'{unique_instance}.api', '{{.Config.Hostname}}')}\n"
    assert "endpoint api:http moved (env.API_URLS)" in single.stdout
    assert env_of(f"{unique_instance}.app")["API_URLS"] == f"http://api.{unique_instance}:8080/"
