"""Private networks, the pure part: which networks a container joins, under which alias,
what the plan says when that changes, and which networks a deploy must create."""

import pytest

from deployer import plugins
from deployer.errors import DeployerError
from deployer.model import discovery, network, template
from deployer.model.plan import plan
from deployer.model.spec import changes, render

SHOP = "db: {image: x, register: {5432: sql}}\ncache: {image: x}\n"
WEB = "web: {image: x, expose: {'shop/db:sql': DB}}\n"


def specs(text, instance, others=None):
    parsed = template.parse(text, "app.yaml")
    endpoints = discovery.allocate(parsed, {}, set(), "", instance)
    return {s.service: s for s in render(parsed, instance, "/v", plugins.installed(), {}, {**(others or {}), **endpoints})}


class Shop:
    instance = "shop"
    endpoints = {"db:sql": {"address": "", "host_port": 0, "port": 5432, "wan": False}}


def test_every_container_joins_its_instances_network_under_a_stable_alias():
    shop = specs(SHOP, "shop")

    assert shop["cache"].networks == (("deployer-shop", "cache.shop"),)
    assert shop["db"].networks == (("deployer-shop", "db.shop"), ("deployer-shop.db", "db.shop"))
    assert network.missing(shop.values(), {"deployer-shop"}, "shop") == ("deployer-shop.db",)


def test_a_consumer_of_another_instance_joins_only_that_services_network():
    web = specs(WEB, "blog", discovery.of_other_instances([Shop()]))["web"]

    assert web.networks == (("deployer-blog", "web.blog"), ("deployer-shop.db", ""))
    assert dict(web.env) == {"DB": "db.shop:5432"}
    assert network.joined(web) == ["joins shop's network for db:sql"]
    assert plan([web], None, (), {"x": "sha256:1"})[0].reason == "new, joins shop's network for db:sql"


def test_a_one_off_joins_its_instances_network_without_the_services_alias():
    args = specs(SHOP, "shop")["db"].one_off_args(["sh"])

    assert args[args.index("--network") + 1] == "deployer-shop" and "--network-alias" not in args


def test_a_network_of_another_instance_is_never_created_and_its_absence_is_explained():
    web = specs(WEB, "blog", discovery.of_other_instances([Shop()]))["web"]

    with pytest.raises(DeployerError, match="instance 'shop', which has no network deployer-shop.db on this host"):
        network.missing([web], {"deployer-blog"}, "blog")


def test_a_service_deployed_before_private_networks_is_recreated_saying_it_joins_its_network():
    cache = specs(SHOP, "shop")["cache"]
    recorded = {**cache.to_dict(), "ports": ["172.17.0.1:30000:6379"]}
    recorded.pop("networks")  # as a release before private networks recorded it

    assert changes(recorded, cache) == ["joins its instance's network", "ports changed"]


def test_the_networks_a_deploy_asks_about_are_its_own_and_those_it_exposes():
    parsed = template.parse(SHOP + WEB, "app.yaml")

    assert network.asked(parsed, "shop") == ("deployer-shop", "deployer-shop.db")
    assert network.asked(template.parse(WEB, "app.yaml"), "blog") == ("deployer-blog", "deployer-shop.db")
    assert network.asked(template.parse(WEB, "app.yaml"), "blog", across=False) == ("deployer-blog",)
