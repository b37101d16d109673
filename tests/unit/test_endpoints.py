"""Endpoint allocation, references and start order: the pure part of service discovery."""

from types import SimpleNamespace

import pytest

from deployer.model import discovery, template
from deployer import plugins
from deployer.model.spec import changes, render
from deployer.errors import TemplateError

TEXT = """
db: {image: x, register: {5432: sql, "8080": {name: web, wan: true}}}
cache: {image: x, register: {6379: redis}}
app: {image: x, expose: {"db:sql": DB, "cache:redis": {env: REDIS_URL, format: "redis://{host}:{port}/0"}}}
"""


def parse(text=TEXT):
    return template.parse(text, "app.yaml")


def test_published_endpoints_get_the_lowest_free_ports_and_recorded_ones_keep_theirs():
    endpoints = discovery.allocate(parse(), {"cache:redis": [31000]}, {30000, 30002}, "10.0.0.7", "shop", publish=True)

    assert {k: e.host_port for k, e in endpoints.items()} == {"db:sql": 30001, "db:web": 30003, "cache:redis": 31000}
    assert endpoints["db:web"].bind == "0.0.0.0" and endpoints["db:sql"].bind == "10.0.0.7"
    assert endpoints["db:sql"].to_dict() == {"address": "10.0.0.7", "host_port": 30001, "port": 5432, "wan": False}


def test_on_one_host_only_wan_endpoints_get_a_host_port_and_the_others_are_reached_by_alias():
    endpoints = discovery.allocate(parse(), {}, set(), "", "shop")

    assert {k: e.host_port for k, e in endpoints.items()} == {"db:sql": 0, "db:web": 30000, "cache:redis": 0}
    assert endpoints["db:sql"].reached == ("db.shop", 5432) and endpoints["db:sql"].network == "deployer-shop.db"
    specs = {s.service: s for s in render(parse(), "shop", "/v", plugins.installed(), {}, endpoints)}
    assert dict(specs["app"].env) == {"DB": "db.shop:5432", "REDIS_URL": "redis://cache.shop:6379/0"}
    assert specs["cache"].ports == () and specs["db"].ports == ("0.0.0.0:30000:8080",)


def test_services_start_after_the_services_they_expose():
    deps = discovery.dependencies(parse(), {})

    assert deps == {"db": set(), "cache": set(), "app": {"db", "cache"}}
    assert discovery.order(["app", "db", "cache"], deps) == ["cache", "db", "app"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: {image: x, expose: {'b:web': B}}\nb: {image: x}\n", "'b:web' names no registered endpoint (known: none)"),
        ("a: {image: x, expose: {'other/db:sql': B}}\n", "'other/db:sql' names no registered endpoint (known: none)"),
        (
            "a: {image: x, register: {1: p}, expose: {'c:p': C}}\nb: {image: x, register: {1: p}, expose: {'a:p': A}}\n"
            "c: {image: x, register: {1: p}, expose: {'b:p': B}}\n",
            "services expose each other in a cycle: a -> c -> b -> a",
        ),
    ],
    ids=["unknown endpoint", "unknown other instance", "cycle"],
)
def test_a_bad_reference_is_a_template_error(text, message):
    with pytest.raises(TemplateError) as caught:
        discovery.dependencies(parse(text), {})

    assert message in str(caught.value)


def test_another_instances_endpoints_come_from_its_state():
    class State:
        instance = "shared"
        endpoints = {"db:sql": {"address": "x", "host_port": 30100, "port": 5432, "wan": False}}

    others = discovery.of_other_instances([State()])

    assert others["shared/db:sql"].reached == ("db.shared", 5432)
    assert others["shared/db:sql"].network == "deployer-shared.db"
    assert discovery.dependencies(parse("a: {image: x, expose: {'shared/db:sql': DB}}\n"), others) == {"a": set()}


def test_listening_ports_are_read_from_proc_net_tcp():
    proc = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:1F90 00000000:0000 0A\n"  # 127.0.0.1:8080 listening
        "   1: 0100007F:8AE2 0100007F:1F90 01\n"  # an established connection
        "  sl  local_address rem_address   st\n"
        "   0: 00000000000000000000000000000000:7530 00000000000000000000000000000000:0000 0A\n"
    )

    assert discovery.listening(proc) == {8080, 30000}


def test_a_dependent_whose_endpoint_moved_is_recreated_and_the_plan_names_the_endpoint():
    app = parse("app: {image: x, expose: {'db:sql': DB}}\n")
    before = {"db:sql": discovery.Endpoint("10.0.0.7", 30000, 5432)}  # etcd: registered on another host
    after = {"db:sql": discovery.Endpoint("10.0.0.8", 30000, 5432)}
    old, new = (render(app, "shop", "/v", plugins.installed(), {}, e)[0] for e in (before, after))

    assert changes(old.to_dict(), new) == ["endpoint db:sql moved (env.DB)"]


def test_a_dependent_on_another_host_is_recreated_when_the_replicas_set_changed_and_the_plan_names_it():
    app = parse("app: {image: x, expose: {'api:http': {env: API, format: 'http://{host}:{port}/'}}}\n")
    three = {"api:http": discovery.Endpoint("10.0.0.7", 30000, 80, host_ports=(30000, 30001, 30002))}
    two = {"api:http": discovery.Endpoint("10.0.0.7", 30000, 80, host_ports=(30000, 30001))}
    old, new = (render(app, "shop", "/v", plugins.installed(), {}, e)[0] for e in (three, two))

    assert dict(new.env)["API"] == "http://10.0.0.7:30000/,http://10.0.0.7:30001/"
    assert changes(old.to_dict(), new) == ["endpoint api:http moved (env.API)"]


def test_another_instances_replicas_keep_their_host_ports_from_a_new_allocation():
    other = SimpleNamespace(instance="shared", endpoints={"api:http": {
        "address": "", "host_port": 30000, "port": 80, "wan": True, "host_ports": [30000, 30001]}})
    facts = SimpleNamespace(state=None, others=[other], listening={30002}, address="")

    endpoints, others, _ = discovery.resolve(parse(), "shop", facts)

    assert endpoints["db:web"].host_port == 30003 and others["shared/api:http"].reached == ("api.shared", 80)
