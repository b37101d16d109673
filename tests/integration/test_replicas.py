"""Replicas (issue 15) against a real sshd, Docker engine and router: several containers
of a service serve its domain in turn, a change rolls them one at a time failing no
request, a failing one stops the roll, scaling keeps the others.

The router's fixtures are test_router.py's (one router per engine, on free ports).
"""

import json
import time

from support import docker
from test_router import Client, cli, failed, names, router, router_image, steady  # noqa: F401 (fixtures)

SHOP = """\
Vars: {version: "1", release: "2"}  # release: the one a flaky version is deployed as
web:
  image: local/busybox
  replicas: %d
  cmd: [sh, -c, 'mkdir -p /www && echo "$(hostname) $VERSION" > /www/index.html &&
    if [ "$VERSION" = bad ]; then echo "version bad: no /up" >&2;
    elif [ "$VERSION" != flaky ] || nslookup r{release}.web.1.{instance} | grep -qw "$(hostname -i)"; then echo ok > /www/up;
    fi &&
    exec httpd -f -p 8080 -h /www']
  env: {VERSION: "{version}"}
  route: {domains: ["{instance}.shop.test"], port: 8080, health: /up}
"""


def template(tmp_path, replicas=3):
    path = tmp_path / f"shop{replicas}.yaml"
    path.write_text(SHOP % replicas)
    return path


def ids(instance):
    """Each running replica's container id, by name."""
    out = docker("ps", "--filter", f"label=deployer.instance={instance}", "--format", "{{.Names}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines())


def answers(client, count=9):
    """The bodies of ``count`` requests, one after the other."""
    return [client.get() for _ in range(count)]


def test_three_replicas_serve_one_domain_from_three_containers_and_status_lists_each(cli, names, router, tmp_path):
    a = names()

    deployed = cli("deploy", template(tmp_path), "--instance", a, check=True)
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")

    assert all(f"web.{n}" in deployed.stdout for n in (1, 2, 3))
    seen = answers(client)
    assert {status for status, _ in seen} == {200}
    assert len({body for _, body in seen}) == 3  # three containers (hostnames) answered
    assert sorted(ids(a)) == [f"{a}.web.1", f"{a}.web.2", f"{a}.web.3"]
    labels = docker("inspect", "--format", '{{index .Config.Labels "deployer.replica"}}', f"{a}.web.2").stdout
    assert labels.strip() == "2"
    status = json.loads(cli("status", a, "--json", check=True).stdout)
    assert [(s["service"], s["container"], s["state"]) for s in status["services"]] == [
        (f"web.{n}", f"{a}.web.{n}", "running") for n in (1, 2, 3)]
    (row,) = [r for r in json.loads(cli("routes", "--json", check=True).stdout)["routes"] if r["instance"] == a]
    assert row["container"] == f"{a}.web.1, {a}.web.2, {a}.web.3" and row["state"] == "running, running, running"
    cli("deploy", template(tmp_path), "--instance", a, check=True)  # nothing changed: no release
    assert [e["release"] for e in json.loads(cli("history", a, "--json", check=True).stdout)["releases"]] == [1]


def test_a_change_rolls_the_replicas_one_at_a_time_failing_no_request_and_a_bad_one_stops_the_roll(
        cli, names, router, tmp_path):
    a = names()
    shop = template(tmp_path)
    cli("deploy", shop, "--instance", a, check=True)
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")

    with steady(client) as seen:
        time.sleep(0.5)
        rolled = cli("deploy", shop, "--instance", a, "--var", "version=2", check=True)
        time.sleep(0.5)

    assert failed(seen) == [] and len(seen) > 20, seen[-5:]
    assert [next(w for w in line.split() if w.startswith("web.")) for line in rolled.stdout.splitlines()
            if "env.VERSION changed" in line] == ["web.1", "web.2", "web.3"]  # in this order
    after = answers(client)
    assert {body.split()[1] for _, body in after} == {"2"} and len({body for _, body in after}) == 3
    before_bad = ids(a)

    with steady(client) as seen:
        refused = cli("deploy", shop, "--instance", a, "--var", "version=bad")

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{a}.web.1" in refused.stderr and "failed its route's health check" in refused.stderr
    assert "deploy stopped at service 'web.1'" in refused.stderr and "  | version bad: no /up" in refused.stderr
    assert failed(seen) == []
    assert ids(a) == before_bad  # the three old replicas, untouched
    still = answers(client)
    assert {body.split()[1] for _, body in still} == {"2"} and len({body for _, body in still}) == 3
    status = json.loads(cli("status", a, "--json", check=True).stdout)
    assert {s["state"] for s in status["services"]} == {"running"} and len(status["services"]) == 3


def test_a_failing_replica_puts_back_the_replicas_replaced_before_it(cli, names, router, tmp_path):
    a = names()
    shop = template(tmp_path)
    cli("deploy", shop, "--instance", a, check=True)
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")
    before = ids(a)

    with steady(client) as seen:
        # flaky: only replica 1's new container passes (it finds itself at the release's web.1 alias)
        refused = cli("deploy", shop, "--instance", a, "--var", "version=flaky")

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "deploy stopped at service 'web.2'" in refused.stderr
    assert "web.1 went back to its previous container" in refused.stderr
    assert failed(seen) == []
    assert ids(a) == before  # the three old containers run again, as their own names
    after = answers(client)
    assert {body.split()[1] for _, body in after} == {"1"} and len({body for _, body in after}) == 3
    status = json.loads(cli("status", a, "--json", check=True).stdout)
    assert [(s["service"], s["state"]) for s in status["services"]] == [(f"web.{n}", "running") for n in (1, 2, 3)]
    assert "keep" in cli("deploy", shop, "--instance", a, "--dry-run", check=True).stdout  # the state says what runs
    assert "recreate" not in cli("deploy", shop, "--instance", a, "--dry-run", check=True).stdout


def test_two_replicas_at_a_time_roll_failing_no_request_and_a_failing_batch_puts_back_its_done_replica(
        cli, names, router, tmp_path):
    a = names()
    shop = template(tmp_path, 4)
    batch = {"FABRIC_DEPLOYER_ROLLING_BATCH": "2"}
    cli("deploy", shop, "--instance", a, check=True)
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")
    before = ids(a)

    with steady(client) as seen:
        cli("deploy", shop, "--instance", a, "--var", "version=2", env=batch, check=True)
        time.sleep(0.5)
        refused = cli("deploy", shop, "--instance", a, "--var", "version=flaky", "--var", "release=3", env=batch)

    assert failed(seen) == [] and len(seen) > 20, seen[-5:]
    rolled = ids(a)
    assert sorted(rolled) == sorted(before) and not set(rolled.values()) & set(before.values())
    assert refused.returncode == 1 and "deploy stopped at service 'web.2'" in refused.stderr
    assert "web.1 went back to its previous container" in refused.stderr
    assert ids(a) == rolled  # release 2's four replicas, web.1's as before
    after = answers(client, 12)
    assert {body.split()[1] for _, body in after} == {"2"} and len({body for _, body in after}) == 4


def test_one_container_becoming_replicas_and_back_fails_no_request(cli, names, router, tmp_path):
    a = names()
    one, three = template(tmp_path, 1), template(tmp_path, 3)
    cli("deploy", one, "--instance", a, check=True)
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")

    with steady(client) as seen:
        time.sleep(0.5)
        cli("deploy", three, "--instance", a, check=True)
        replicated = sorted(ids(a))
        cli("deploy", one, "--instance", a, check=True)
        time.sleep(0.5)

    assert failed(seen) == [] and len(seen) > 20, seen[-5:]
    assert replicated == [f"{a}.web.1", f"{a}.web.2", f"{a}.web.3"] and sorted(ids(a)) == [f"{a}.web"]


def test_scale_up_and_down_keeps_the_other_replicas_and_rollback_restores_the_count(cli, names, router, tmp_path):
    a = names()
    cli("deploy", template(tmp_path, 3), "--instance", a, check=True)
    three = ids(a)

    up = cli("scale", a, "web=5", check=True)

    five = ids(a)
    assert sorted(five) == [f"{a}.web.{n}" for n in range(1, 6)]
    assert {name: five[name] for name in three} == three
    assert "web.4" in up.stdout and "web.5" in up.stdout

    cli("scale", a, "web=2", check=True)

    two = ids(a)
    assert two == {name: five[name] for name in (f"{a}.web.1", f"{a}.web.2")}
    cli("rollback", a, check=True)

    assert sorted(ids(a)) == [f"{a}.web.{n}" for n in range(1, 6)]
    assert {name: ids(a)[name] for name in two} == two
    client = Client(router, cli("router", "ca", check=True).stdout, f"{a}.shop.test")
    assert len({body for _, body in answers(client, 15)}) == 5
    changes = cli("history", a, check=True).stdout
    assert "web.4 create: new; web.5 create: new" in changes and "web.5 remove: scaled down" in changes
    restored = ids(a)
    cli("deploy", template(tmp_path, 3), "--instance", a, check=True)  # the instance's scale beats the template
    assert ids(a) == restored


def test_logs_exec_and_run_pick_replicas(cli, names, router, tmp_path):
    a = names()
    cli("deploy", template(tmp_path, 2), "--instance", a, check=True)
    hostnames = {name: docker("inspect", "--format", "{{.Config.Hostname}}", name).stdout.strip() for name in ids(a)}

    second = cli("exec", a, "web.2", "--", "hostname", check=True)
    first = cli("exec", a, "web", "--", "hostname", check=True)
    logs = cli("logs", a, "--service", "web", "--tail", "5", check=True)
    one_off = cli("run", a, "web", "--", "echo", "one-off", check=True)

    assert second.stdout.strip() == hostnames[f"{a}.web.2"] and first.stdout.strip() == hostnames[f"{a}.web.1"]
    assert logs.returncode == 0 and "Traceback" not in logs.stderr
    assert one_off.stdout.strip() == "one-off" and sorted(ids(a)) == [f"{a}.web.1", f"{a}.web.2"]
