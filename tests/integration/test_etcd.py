"""Service discovery across hosts: the etcd backend, a real etcd server and two hosts (two
sshds, each with its own Docker engine and state directory)."""

import base64
import contextlib
import json
import os
import secrets
import subprocess
import urllib.request

import pytest
from conftest import _sshd
from support import docker

DB = """\
db:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "db of {instance}" > /www/index.html && exec httpd -f -p 8080 -h /www']
  register: {8080: web, "9000": admin}
"""
APP = """\
app:
  image: local/busybox
  cmd: sleep 3600
  expose: {"%s": DB_ADDR}
"""


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory, second_engine, docker_engine):
    """Host A on this machine's engine, host B on the second engine."""
    with contextlib.ExitStack() as stack:
        yield (stack.enter_context(_sshd(tmp_path_factory.mktemp("etcd-a"))),
               stack.enter_context(_sshd(tmp_path_factory.mktemp("etcd-b"), {"DOCKER_HOST": second_engine})))


@pytest.fixture
def etcd_env(etcd_server):
    """Settings for the etcd backend, through the environment, with a prefix of this test's own."""
    prefix = f"/t{secrets.token_hex(4)}"
    return {"FABRIC_DEPLOYER_DISCOVERY": "etcd", "FABRIC_DEPLOYER_ETCD_ENDPOINTS": etcd_server,
            "FABRIC_DEPLOYER_ETCD_PREFIX": prefix, "prefix": prefix, "url": etcd_server}


@pytest.fixture
def across(two_hosts, cli_on, etcd_env, tmp_path, second_engine, unique_instance):
    """deploy(host, text, instance, *args): deploy a template to host "a" or "b" with etcd."""
    hosts = {"a": two_hosts[0], "b": two_hosts[1]}
    env = {k: v for k, v in etcd_env.items() if k.startswith("FABRIC_")}

    def run(host, *args, check=True, settings=None):
        return cli_on(hosts[host])(*args, env={**env, **(settings or {})}, check=check)

    def deploy(host, text, instance=unique_instance, *args, check=True, settings=None):
        path = tmp_path / f"{host}-{secrets.token_hex(3)}.yaml"
        path.write_text(text)
        return run(host, "deploy", path, "--instance", instance, *args, check=check, settings=settings)

    yield deploy, run
    for host in hosts:  # the fixture's instance leaves no containers on either engine
        run(host, "destroy", unique_instance, check=None)


def keys(etcd_env):
    """What etcd holds under the test's prefix: {key: endpoint}."""
    start = etcd_env["prefix"] + "/"
    body = json.dumps({"key": _b64(start), "range_end": _b64(start[:-1] + "0")}).encode()
    with urllib.request.urlopen(etcd_env["url"] + "/v3/kv/range", body, timeout=10) as answer:
        kvs = json.load(answer).get("kvs", [])
    return {base64.b64decode(kv["key"]).decode(): json.loads(base64.b64decode(kv["value"])) for kv in kvs}


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def on_b(second_engine, *args):
    """docker on host B's engine."""
    env = dict(os.environ, DOCKER_HOST=second_engine)
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env, timeout=60)


def test_an_app_on_host_b_reaches_the_db_registered_on_host_a(across, etcd_env, second_engine, unique_instance):
    deploy, run = across
    deploy("a", DB)
    registered = keys(etcd_env)
    assert sorted(k.rsplit("/", 1)[1] for k in registered) == ["db:admin", "db:web"]
    assert all(k.startswith(f"{etcd_env['prefix']}/{unique_instance}/") for k in registered)
    web = next(e for k, e in registered.items() if k.endswith("db:web"))
    bindings = json.loads(docker("inspect", "--format", "{{json .HostConfig.PortBindings}}", f"{unique_instance}.db").stdout)
    assert bindings["8080/tcp"][0]["HostIp"] == web["address"]  # the host's reachable address, never the bridge's

    deploy("b", APP % "db:web")

    address = on_b(second_engine, "exec", f"{unique_instance}.app", "sh", "-c", 'echo "$DB_ADDR"').stdout.strip()
    assert address == f"{web['address']}:{web['host_port']}"
    assert not web["address"].startswith("127.")  # the host's reachable address, not loopback
    page = on_b(second_engine, "exec", f"{unique_instance}.app", "wget", "-qO-", f"http://{address}/")
    assert page.stdout == f"db of {unique_instance}\n", page.stderr

    deploy("a", DB, unique_instance, "--force")  # the db is recreated: same address

    assert keys(etcd_env) == registered
    listed = run("a", "endpoints", unique_instance).stdout
    assert f"db:web    {address}" in listed and "host address (etcd)" in listed
    again = deploy("b", APP % "db:web")
    assert "keep" in again.stdout and "create" not in again.stdout
    assert on_b(second_engine, "exec", f"{unique_instance}.app", "wget", "-qO-", f"http://{address}/").returncode == 0


def test_another_instance_on_another_host_and_what_destroy_and_removal_leave(across, etcd_env, other_instance,
                                                                             unique_instance):
    deploy, run = across
    deploy("a", DB)
    deploy("b", APP % f"{unique_instance}/db:web", other_instance)
    assert docker("inspect", f"{other_instance}.app").returncode != 0  # on host B's engine, not A's

    deploy("a", DB.replace(', "9000": admin', ""))  # an endpoint removed: its key goes
    assert sorted(k.rsplit("/", 1)[1] for k in keys(etcd_env)) == ["db:web"]

    run("a", "destroy", unique_instance)  # its keys go too

    assert keys(etcd_env) == {}
    failed = deploy("b", APP % f"{unique_instance}/db:web", other_instance, "--force", check=False)
    assert failed.returncode == 2
    assert f"'{unique_instance}/db:web' names no registered endpoint" in failed.stderr
    run("b", "destroy", other_instance)


def test_etcd_out_of_reach_or_unset_fails_before_anything_changes(across, unique_instance):
    deploy, run = across
    away = deploy("a", DB, check=False, settings={"FABRIC_DEPLOYER_ETCD_ENDPOINTS": "http://127.0.0.1:1"})
    assert away.returncode == 1
    assert "etcd is not reachable from this host at http://127.0.0.1:1" in away.stderr
    assert "Traceback" not in away.stderr
    assert docker("inspect", f"{unique_instance}.db").returncode != 0

    unset = deploy("a", DB, check=False, settings={"FABRIC_DEPLOYER_ETCD_ENDPOINTS": ""})
    assert unset.returncode == 2
    assert "setting deployer.etcd.endpoints: the etcd backend needs at least one URL" in unset.stderr


API = """\
api:
  image: local/busybox
  replicas: 3
  cmd: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
  register: {8080: http}
"""


def test_an_app_on_host_b_gets_every_replica_on_host_a_and_is_recreated_when_they_are_scaled(
        across, etcd_env, second_engine, unique_instance):
    deploy, run = across
    deploy("a", API)
    (key, api), = keys(etcd_env).items()
    assert key.endswith("/api:http") and len(set(api["host_ports"])) == 3 and api["host_port"] == api["host_ports"][0]

    deploy("b", APP % "api:http")

    app = f"{unique_instance}.app"
    addresses = on_b(second_engine, "exec", app, "sh", "-c", 'echo "$DB_ADDR"').stdout.strip().split(",")
    assert addresses == [f"{api['address']}:{port}" for port in api["host_ports"]]
    pages = [on_b(second_engine, "exec", app, "wget", "-qO-", f"http://{a}/").stdout for a in addresses]
    hostnames = [docker("inspect", "--format", "{{.Config.Hostname}}", f"{unique_instance}.api.{n}").stdout
                 for n in (1, 2, 3)]
    assert pages == hostnames and len(set(pages)) == 3  # three containers on host A answered

    run("a", "scale", unique_instance, "api=2")
    (two,) = keys(etcd_env).values()
    assert two["host_ports"] == api["host_ports"][:2]
    again = deploy("b", APP % "api:http")

    assert "endpoint api:http moved (env.DB_ADDR)" in again.stdout
    assert on_b(second_engine, "exec", app, "sh", "-c", 'echo "$DB_ADDR"').stdout.strip() == ",".join(addresses[:2])
