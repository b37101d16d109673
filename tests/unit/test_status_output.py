"""What ``status`` shows of an instance (output.status): each service's container, running
or not, and its healthcheck's verdict; and messages whose counts agree with their nouns."""

import dataclasses
import json

import pytest

from deployer.cli import output
from deployer.model import route
from deployer.model.state import Container, InstanceState, ServiceState
from deployer.ops.converge import Deployed
from deployer.ops.instance import Status

SPEC = {"image": "local/postgres", "ports": [], "mounts": []}


def inspected(name, running=True, health=None):
    state = {"Running": running, "Status": "running" if running else "exited"}
    if health:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    labels = {"deployer.service": name.split(".")[1], "deployer.config-hash": "h", "deployer.release": "1"}
    return {"Name": f"/{name}", "State": state, "Config": {"Image": "local/postgres", "Labels": labels},
            "Image": "sha256:1", "Created": "", "NetworkSettings": {"Ports": {}}}


def status(*containers):
    services = {c["Name"].split(".")[1]: ServiceState(c["Name"][1:], "h", "sha256:1", SPEC) for c in containers}
    state = InstanceState("shop", "app.yaml", 1, "2026-01-01T00:00:00+00:00", "ann@laptop", services)
    return Status("web1", "shop", state, tuple(Container.from_inspect(c) for c in containers))


@pytest.mark.parametrize("health", ["healthy", "starting", "unhealthy"])
def test_status_shows_a_running_containers_health(capsys, health):
    output.status(status(inspected("shop.db", health=health), inspected("shop.cache")))

    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows[0].split()[:4] == ["db", "shop.db", "running", f"({health})"]
    assert rows[1].split()[:4] == ["cache", "shop.cache", "running", "local/postgres"]


def test_status_json_gives_the_health_apart_and_none_without_a_healthcheck_or_when_stopped(capsys):
    output.status(status(inspected("shop.db", health="healthy"), inspected("shop.cache"),
                         inspected("shop.old", running=False, health="unhealthy")), as_json=True)

    services = json.loads(capsys.readouterr().out)["services"]
    assert [(s["service"], s["state"], s["health"]) for s in services] == [
        ("db", "running (healthy)", "healthy"), ("cache", "running", None), ("old", "exited", None)]


def test_one_changed_service_is_one_service(capsys):
    action = type("Action", (), {"kind": "recreate", "service": "web", "reason": "env.A changed"})()
    output.deployed(Deployed("web1", "shop", 2, (action,), 1.0))
    output.pruned("web1", "shop", ["shop.web.r1"], ["deployer/shop/web:1"])

    out = capsys.readouterr().out
    assert "release 2, 1 service changed in" in out
    assert "pruned 1 retained container of shop" in out and "pruned 1 image built for shop" in out


def test_the_question_before_destroy_names_what_goes():
    with_state = status(inspected("shop.db"), inspected("shop.web"))
    nothing_left = Status("web1", "shop", None, ())

    assert output.destroy_question(with_state, volumes=False) == (
        "destroy shop on web1 (release 1: db, web): its containers, built images and state (volumes are kept)?")
    assert output.destroy_question(with_state, volumes=True).endswith("its containers, built images, state and volumes?")
    assert output.destroy_question(nothing_left, volumes=True) == (
        "destroy the volumes of shop on web1 (it has no containers or state)?")


def test_status_shows_each_routed_services_domains(capsys):
    result = status(inspected("shop.web"))
    routes = {"web": {"domains": ["shop.example", "www.shop.example"], "port": "8080"}}
    routed = dataclasses.replace(result, state=dataclasses.replace(result.state, routes=routes))

    output.status(routed)
    output.status(routed, as_json=True)

    text, document = capsys.readouterr().out.split("\n{", 1)
    assert "web is served at shop.example, www.shop.example (port 8080)" in text
    assert json.loads("{" + document)["routes"]["web"]["domains"] == ["shop.example", "www.shop.example"]


def test_the_route_table_and_the_router_are_shown_for_people_and_as_json(capsys):
    held = (route.Route("shop.example", "shop", "web", "8080", "", ("r3.web.shop:8080",)),)
    found = {"Name": "/deployer-router", "Config": {"Image": "caddy:2"},
             "State": {"Status": "running", "StartedAt": "2026-01-01T00:00:00Z"},
             "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}}}

    output.routes("web1", held, {"shop.web": "running (healthy)"})
    output.router_status("web1", found, held)
    output.router_status("web1", None, ())
    output.routes("web1", held, as_json=True)

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["DOMAIN", "INSTANCE", "SERVICE", "CONTAINER", "STATE", "UPSTREAM", "HEALTH"]
    assert lines[1].split() == ["shop.example", "shop", "web", "shop.web", "running", "(healthy)", "r3.web.shop:8080",
                                "tcp", "connect"]
    assert lines[2] == ("router deployer-router on web1: running since 2026-01-01T00:00:00Z, caddy:2, on 0.0.0.0:80; "
                        "1 domain of 1 instance")
    assert lines[3].startswith("no router on web1 (a deploy with a route starts it; 0 domains")
    assert json.loads("\n".join(lines[4:]))["routes"][0]["state"] == "missing"  # no state given: none runs
