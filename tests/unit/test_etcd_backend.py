"""The etcd backend's pure part: settings, keys, the transaction that syncs them, and
what expose may name from what other hosts registered."""

import base64
import json

import pytest

from deployer.model import discovery, template
from deployer.errors import TemplateError
from deployer.settings import Settings
from deployer.model.etcd import Etcd, read_registry

ETCD = Etcd(("http://10.0.0.5:2379",), "/deployer")
DB = {"address": "10.0.0.7", "host_port": 30000, "port": 8080, "wan": False}


def registry_answer(entries):
    """An etcd range answer holding ``{key: value text}``."""
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return json.dumps({"kvs": [{"key": b64(k), "value": b64(v)} for k, v in entries.items()]})


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, None),
        ({"discovery": "state"}, None),
        ({"discovery": "etcd", "etcd": {"endpoints": "http://a:2379, https://b:2379"}},
         Etcd(("http://a:2379", "https://b:2379"), "/deployer")),
        ({"discovery": "etcd", "etcd": {"endpoints": ["http://a:2379"], "prefix": "/shop/"}},
         Etcd(("http://a:2379",), "/shop")),
    ],
)
def test_settings_choose_the_backend(settings, expected):
    assert Settings.parse(settings).etcd == expected


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"discovery": "consul"}, "setting deployer.discovery: expected one of state, etcd, got 'consul'"),
        ({"discovery": "etcd"}, "setting deployer.etcd.endpoints: the etcd backend needs at least one URL"),
        ({"discovery": "etcd", "etcd": {"endpoints": "10.0.0.5:2379"}},
         "setting deployer.etcd.endpoints: expected http(s)://HOST:PORT, got '10.0.0.5:2379'"),
        ({"discovery": "etcd", "etcd": {"endpoints": "http://a:2379/$(reboot) x"}}, "expected http(s)://HOST:PORT"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(TemplateError) as error:
        Settings.parse(settings).etcd
    assert message in str(error.value)


@pytest.mark.parametrize(
    "url, target",
    [("http://10.0.0.5:2379", "10.0.0.5"), ("http://127.0.0.1:2379", "1.1.1.1"), ("http://etcd.lan:2379", "1.1.1.1")],
)
def test_a_host_finds_its_address_on_the_route_toward_etcd(url, target):
    assert Etcd((url,), "/d").route_target == target


def test_only_what_differs_is_written_and_what_is_gone_is_deleted():
    own = ETCD.own("shop", "h1")
    wanted = ETCD.registrations({"db:web": DB}, "shop", "h1", "web1")
    assert list(wanted) == [own + "db:web"] and json.loads(wanted[own + "db:web"]) == {**DB, "host": "web1"}

    assert ETCD.changes(wanted, {own + "db:web": {**DB, "host": "web1"}}, "shop", "h1") is None

    registry = {own + "db:old": DB, "/deployer/shop/h2/db:old": DB, "/deployer/other/h1/db:old": DB}
    ops = json.loads(ETCD.changes(wanted, registry, "shop", "h1"))["success"]
    decode = lambda text: base64.b64decode(text).decode()  # noqa: E731
    assert [decode(op["requestPut"]["key"]) for op in ops if "requestPut" in op] == [own + "db:web"]
    assert [decode(op["requestDeleteRange"]["key"]) for op in ops if "requestDeleteRange" in op] == [own + "db:old"]


def test_destroy_removes_exactly_one_hosts_keys_of_one_instance():
    request = json.loads(ETCD.delete_request("shop", "h1"))
    assert base64.b64decode(request["key"]).decode() == "/deployer/shop/h1/"
    assert base64.b64decode(request["range_end"]).decode() == "/deployer/shop/h10"


def test_expose_may_name_other_hosts_endpoints_of_its_instance_and_any_instances():
    registry = {
        "/deployer/shop/hA/db:web": {**DB, "host": "a"},
        "/deployer/shop/hB/cache:redis": {**DB, "host": "b"},
        "/deployer/blog/hA/db:web": {**DB, "host": "a"},
    }
    found, ambiguous = ETCD.endpoints(registry, "shop", "hB")

    assert set(found) == {"shop/db:web", "shop/cache:redis", "blog/db:web", "db:web"}  # not this host's own cache
    assert found["db:web"] == discovery.Endpoint("10.0.0.7", 30000, 8080) and ambiguous == {}


def test_an_endpoint_registered_by_two_hosts_names_none_and_the_error_says_so():
    registry = {"/deployer/shop/hA/db:web": {**DB, "host": "a"}, "/deployer/shop/hC/db:web": {**DB, "host": "c"}}
    found, ambiguous = ETCD.endpoints(registry, "shop", "hB")
    assert "db:web" not in found and ambiguous["db:web"] == ["a", "c"]

    app = template.parse("app: {image: x, expose: {'db:web': DB}}\n", "app.yaml")
    with pytest.raises(TemplateError) as error:
        discovery.dependencies(app, found, ambiguous)
    assert "app.expose: 'db:web' is registered by several hosts (a, c): it names no one endpoint" in str(error.value)


def test_an_own_endpoint_wins_and_orders_while_another_hosts_does_not():
    app = template.parse("db: {image: x, register: {1: p}}\napp: {image: x, expose: {'db:p': D, 'q:r': Q}}\n", "a.yaml")
    deps = discovery.dependencies(app, {"db:p": discovery.Endpoint("x", 1, 1), "q:r": discovery.Endpoint("y", 2, 2)})
    assert deps == {"db": set(), "app": {"db"}}


def test_a_replicated_endpoint_is_one_key_listing_every_replicas_port_and_reads_back_as_that_set():
    api = discovery.Endpoint("10.0.0.7", 30004, 8080, host_ports=(30004, 30001, 30009))
    (key, value), = ETCD.registrations({"api:http": api.to_dict()}, "shop", "hA", "a").items()
    registry = read_registry(registry_answer({key: value}), "/deployer")

    found, _ = ETCD.endpoints(registry, "shop", "hB")

    assert key == "/deployer/shop/hA/api:http" and json.loads(value)["host_port"] == 30004  # the first: older readers
    assert found["api:http"].addresses == [("10.0.0.7", 30004), ("10.0.0.7", 30001), ("10.0.0.7", 30009)]
    with pytest.raises(ValueError, match="etcd key /deployer/shop/h1/db:web does not hold an endpoint"):
        read_registry(registry_answer({"/deployer/shop/h1/db:web": json.dumps({**DB, "host_ports": "30000"})}),
                      "/deployer")


def test_the_registry_is_read_from_etcds_answer():
    answer = registry_answer({"/deployer/shop/h1/db:web": json.dumps(DB), "/deployer/notes": "x"})
    assert read_registry(answer, "/deployer") == {"/deployer/shop/h1/db:web": DB}

    with pytest.raises(ValueError, match="etcd key /deployer/shop/h1/db:web does not hold an endpoint: 'oops'"):
        read_registry(registry_answer({"/deployer/shop/h1/db:web": "oops"}), "/deployer")
    with pytest.raises(ValueError, match="cannot read etcd's answer"):
        read_registry("<html>", "/deployer")
