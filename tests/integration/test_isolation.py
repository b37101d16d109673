"""Private networks (issue 21): an instance's endpoints answer inside it, and to another
instance only where it exposes one by name; nothing else of it is reachable from
another instance's containers, not even through the Docker bridge's published ports."""

import json
import subprocess

from harness import REPO_ROOT
from support import GET, docker, env_of, fetch, inspect

BEFORE = "24af15d"  # the last commit before private networks: its deployer published endpoints on the bridge

SHOP = """\
db:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "db of {instance}" > /www/index.html && exec httpd -f -p 8080 -h /www']
  register: {8080: web}
admin:
  image: local/busybox
  cmd: [sh, -c, 'mkdir -p /www && echo "admin of {instance}" > /www/index.html && exec httpd -f -p 8081 -h /www']
  register: {8081: web}
app:
  image: local/busybox
  cmd: sleep 3600
  expose: {"db:web": DB_ADDR}
"""


FETCH_DB = 'set -- "$DB_ADDR" 2\n' + GET  # a GET of what DB_ADDR names, within 2 s


def consumer(deployer_cli, tmp_path, shop, more=""):
    """SHOP deployed as the instance ``shop``; the path of a template whose web exposes its
    db:web as DB_ADDR (and has the key ``more`` too)."""
    (tmp_path / "shop.yaml").write_text(SHOP)
    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", shop, check=True)
    client = tmp_path / "blog.yaml"
    client.write_text(f'web:\n  image: local/busybox\n  cmd: sleep 3600\n  expose: {{"{shop}/db:web": DB_ADDR}}\n'
                      + (f"  {more}\n" if more else ""))
    return client


def addresses(container):
    networks = json.loads(inspect(container, "{{json .NetworkSettings.Networks}}"))
    return [n["IPAddress"] for n in networks.values() if n["IPAddress"]]


def gateways(container):
    """The gateways of the container's networks and the default bridge's (where deployer
    once published endpoints)."""
    networks = json.loads(inspect(container, "{{json .NetworkSettings.Networks}}"))
    bridge = docker("network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}").stdout.strip()
    return sorted({n["Gateway"] for n in networks.values() if n["Gateway"]} | {bridge or "172.17.0.1"})


def networks_of(instance):
    return docker("network", "ls", "-q", "--filter", f"label=deployer.instance={instance}").stdout.split()


def test_an_endpoint_answers_inside_its_instance_and_from_no_other_instance(deployer_cli, tmp_path, unique_instance,
                                                                          other_instance):
    a, b = unique_instance, other_instance
    (tmp_path / "shop.yaml").write_text(SHOP)
    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", a, check=True)
    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", b, check=True)

    assert env_of(f"{a}.app")["DB_ADDR"] == f"db.{a}:8080"  # a name on the instance's network, no host port
    assert fetch(f"{a}.app", f"db.{a}:8080") == f"db of {a}\n"
    assert inspect(f"{a}.db", "{{json .HostConfig.PortBindings}}") in ("{}", "null")
    assert fetch(f"{b}.app", f"db.{a}:8080") is None  # a's names do not resolve in b
    for address in addresses(f"{a}.db") + addresses(f"{a}.admin"):
        assert fetch(f"{b}.app", f"{address}:8080", 1) is None, address
        assert fetch(f"{b}.app", f"{address}:8081", 1) is None, address
    probe = " ".join(  # every endpoint port on every gateway b's app sees: a's db answers on none
        f"for p in $(seq 30000 32767); do timeout 1 wget -qO- http://{gateway}:$p/ 2>/dev/null; done;"
        for gateway in gateways(f"{b}.app"))
    swept = docker("exec", f"{b}.app", "sh", "-c", probe + " echo swept").stdout
    assert swept.endswith("swept\n") and f"of {a}" not in swept


def test_another_instance_exposing_an_endpoint_reaches_that_service_and_nothing_else(
        deployer_cli, tmp_path, unique_instance, other_instance):
    shop, blog = unique_instance, other_instance
    client = consumer(deployer_cli, tmp_path, shop)

    deployed = deployer_cli("deploy", client, "--instance", blog, check=True)

    assert f"joins {shop}'s network for db:web" in deployed.stdout
    assert env_of(f"{blog}.web")["DB_ADDR"] == f"db.{shop}:8080"
    assert fetch(f"{blog}.web", f"db.{shop}:8080") == f"db of {shop}\n"
    assert fetch(f"{blog}.web", f"admin.{shop}:8081") is None
    for address in addresses(f"{shop}.admin") + addresses(f"{shop}.app"):
        assert fetch(f"{blog}.web", f"{address}:8081", 1) is None, address

    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", shop, "--force", check=True)  # db recreated

    assert fetch(f"{blog}.web", f"db.{shop}:8080") == f"db of {shop}\n"  # the alias followed it


def test_a_one_off_joins_its_instances_network(deployer_cli, tmp_path, unique_instance):
    (tmp_path / "shop.yaml").write_text(SHOP)
    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", unique_instance, check=True)

    ran = deployer_cli("run", unique_instance, "app", "--", "sh", "-c", FETCH_DB)

    assert ran.returncode == 0 and ran.stdout == f"db of {unique_instance}\n"


def test_a_one_off_and_a_release_command_reach_the_endpoint_of_another_instance_their_service_exposes(
        deployer_cli, tmp_path, unique_instance, other_instance):
    shop, blog = unique_instance, other_instance
    client = consumer(deployer_cli, tmp_path, shop, f"release: {json.dumps(['sh', '-c', FETCH_DB])}")

    deployed = deployer_cli("deploy", client, "--instance", blog, check=True)
    ran = deployer_cli("run", blog, "web", "--", "sh", "-c", FETCH_DB)

    assert f"web release | db of {shop}" in deployed.stderr
    assert ran.returncode == 0 and ran.stdout == f"db of {shop}\n"
    assert docker("ps", "-aq", "--filter", f"label=deployer.one-off={blog}").stdout == ""  # (--rm: gone)


def test_destroy_removes_the_instances_networks(deployer_cli, tmp_path, unique_instance, other_instance):
    shop, blog = unique_instance, other_instance
    (tmp_path / "shop.yaml").write_text(SHOP)
    deployer_cli("deploy", tmp_path / "shop.yaml", "--instance", shop, check=True)
    client = tmp_path / "blog.yaml"
    client.write_text(f'web:\n  image: local/busybox\n  cmd: sleep 3600\n  expose: {{"{shop}/db:web": DB_ADDR}}\n')
    deployer_cli("deploy", client, "--instance", blog, check=True)
    assert len(networks_of(shop)) == 3 and len(networks_of(blog)) == 1  # shop's, db's and admin's; blog's

    deployer_cli("destroy", shop, check=True)  # blog's web still joins shop's db network: disconnected
    deployer_cli("destroy", blog, check=True)

    assert networks_of(shop) == [] and networks_of(blog) == []


def test_an_instance_deployed_before_private_networks_moves_onto_them_in_one_deploy(deployer_cli, tmp_path,
                                                                                   unique_instance):
    old = tmp_path / "old"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", BEFORE, "deployer"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    (tmp_path / "shop.yaml").write_text(SHOP)
    deploy = ("deploy", tmp_path / "shop.yaml", "--instance", unique_instance)
    deployer_cli(*deploy, host=False, env={"PYTHONPATH": str(old), "DEPLOYER_DAEMON": "0"}, cwd=tmp_path, check=True)
    assert env_of(f"{unique_instance}.app")["DB_ADDR"].split(":")[1].startswith("3")  # a host port on the bridge

    moved = deployer_cli(*deploy, host=False, env={"DEPLOYER_DAEMON": "0"}, check=True)

    rows = [line.split(None, 2) for line in moved.stdout.splitlines()]
    reasons = {row[1]: row[2] for row in rows if row and row[0] == "recreate"}
    assert set(reasons) == {"db", "admin", "app"}, moved.stdout  # all of them, in this one deploy
    assert all("joins its instance's network" in reason for reason in reasons.values())
    assert "endpoint db:web moved" in reasons["app"]
    assert fetch(f"{unique_instance}.app", f"db.{unique_instance}:8080") == f"db of {unique_instance}\n"
    assert inspect(f"{unique_instance}.db", "{{json .HostConfig.PortBindings}}") in ("{}", "null")
    again = deployer_cli(*deploy, host=False, env={"DEPLOYER_DAEMON": "0"}, check=True)
    assert "nothing was changed" in again.stdout
