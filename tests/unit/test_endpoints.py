"""Endpoint allocation, references and start order: the pure part of service discovery."""

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


def test_new_endpoints_get_the_lowest_free_ports_and_recorded_ones_keep_theirs():
    endpoints = discovery.allocate(parse(), {"cache:redis": 31000}, {30000, 30002}, "172.17.0.1")

    assert {k: e.host_port for k, e in endpoints.items()} == {"db:sql": 30001, "db:web": 30003, "cache:redis": 31000}
    assert endpoints["db:web"].bind == "0.0.0.0" and endpoints["db:sql"].bind == "172.17.0.1"
    assert endpoints["db:sql"].to_dict() == {"address": "172.17.0.1", "host_port": 30001, "port": 5432, "wan": False}


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

    others = discovery.of_other_instances([State()], "172.17.0.1")

    assert others["shared/db:sql"].host_port == 30100 and others["shared/db:sql"].address == "172.17.0.1"
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


@pytest.mark.parametrize(
    "inspected, address",
    [("172.17.0.0/16 ", "172.17.0.1"), ("10.9.0.0/24 10.9.0.254", "10.9.0.254"), ("", "")],
    ids=["default bridge: no gateway recorded", "gateway recorded", "nothing"],
)
def test_the_bridge_address_is_its_gateway_or_the_first_of_its_subnet(inspected, address):
    assert discovery.bridge_address(inspected) == address


def test_a_dependent_whose_endpoint_moved_is_recreated_and_the_plan_names_the_endpoint():
    app = parse()
    before = discovery.allocate(app, {}, set(), "172.17.0.1")
    after = discovery.allocate(app, {}, set(), "10.0.0.7")  # e.g. the etcd backend: the host's address
    old, new = (render(app, "shop", "/v", plugins.installed(), {}, e)[2] for e in (before, after))

    assert changes(old.to_dict(), new) == ["endpoint db:sql moved (env.DB)", "endpoint cache:redis moved (env.REDIS_URL)"]
