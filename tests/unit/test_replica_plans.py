"""Replicas (``replicas: N``): a container a replica, each a step of the plan (so a change
rolls one replica at a time), all upstreams of the service's route."""

import pytest

from deployer import classic, plugins
from deployer.errors import TemplateError
from deployer.model import discovery, route, spec
from deployer.model.plan import CREATE, KEEP, RECREATE, REMOVE, plan, releasing
from deployer.model.spec import scaled
from deployer.tasks import ns
from deployer.remote.apply import plan_script, waves
from plans import IMAGES, LIMITS, container_of, rendered, state_of

ROUTE = {"domains": ["shop.example"], "port": "8080", "health": "/up"}
BEFORE = (route.Route("shop.example", "c1", "web", "8080", "/up",
                      ("r1.web.1.c1:8080", "r1.web.2.c1:8080", "r1.web.3.c1:8080")),)  # release 1's replicas
WEB = """\
web:
  image: team/app
  replicas: 3
  env: {A: '1'}
  route: {domains: [shop.example], port: 8080, health: /up}
"""


def test_replicas_are_named_and_labelled_by_their_number_from_1(render):
    specs = render(WEB)

    assert [s.name for s in specs.values()] == ["c1.web.1", "c1.web.2", "c1.web.3"]
    assert [dict(s.labels)["deployer.replica"] for s in specs.values()] == ["1", "2", "3"]
    assert {dict(s.labels)["deployer.service"] for s in specs.values()} == {"web"}


def test_one_replica_keeps_the_name_and_config_hash_a_service_had_before_replicas(render):
    before = render(WEB.replace("  replicas: 3\n", ""))["web"]
    after = render(WEB.replace("replicas: 3", "replicas: 1"))["web"]

    assert (after.name, after.config_hash) == (before.name, before.config_hash) == ("c1.web", before.config_hash)
    assert "deployer.replica" not in dict(after.labels)


def test_a_fixed_host_port_with_several_replicas_is_an_error_naming_file_and_key(render):
    with pytest.raises(TemplateError) as caught:
        render("web: {image: team/app, replicas: 2, ports: ['8080:80']}")

    assert str(caught.value).startswith("app.yaml: web.ports: host port '8080:80' is fixed, and 2 replicas")


def test_a_container_port_alone_is_published_by_each_replica(render):
    assert [s.ports for s in render("web: {image: team/app, replicas: 2, ports: ['80']}").values()] == [("80",)] * 2


def test_each_replica_has_its_own_volume_directory_unless_the_volume_is_shared(render):
    specs = render("db: {image: team/app, replicas: 2, volumes: [/data, '/cache:shared', '/conf:ro,shared']}")

    assert [[m.source for m in s.mounts] for s in specs.values()] == [
        ["/srv/deployer/volumes/c1/db.1/data", "/srv/deployer/volumes/c1/db/cache", "/srv/deployer/volumes/c1/db/conf"],
        ["/srv/deployer/volumes/c1/db.2/data", "/srv/deployer/volumes/c1/db/cache", "/srv/deployer/volumes/c1/db/conf"],
    ]
    assert specs["db.1"].mounts[2].read_only


def test_a_service_name_that_looks_like_a_replica_is_an_error(template_error):
    assert "ends like deployer's spare containers or replicas" in str(template_error("web.2: {image: team/app}"))


def test_a_change_recreates_each_replica_in_its_own_step_in_order(render):
    specs = tuple(render(WEB).values())
    changed = tuple(render(WEB.replace("A: '1'", "A: '2'")).values())

    actions = plan(changed, state_of(specs), [container_of(s) for s in specs], IMAGES)

    assert [(a.service, a.kind, a.reason) for a in actions] == [(f"web.{n}", RECREATE, "env.A changed") for n in (1, 2, 3)]
    assert [a.retire for a in actions] == ["c1.web.1.r1", "c1.web.2.r1", "c1.web.3.r1"]


def test_scaling_up_creates_the_new_replicas_and_keeps_the_others(render):
    specs = tuple(render(WEB).values())
    more = tuple(render(WEB.replace("replicas: 3", "replicas: 5")).values())

    actions = plan(more, state_of(specs), [container_of(s) for s in specs], IMAGES)

    assert [(a.service, a.kind) for a in actions] == [("web.1", KEEP), ("web.2", KEEP), ("web.3", KEEP),
                                                      ("web.4", CREATE), ("web.5", CREATE)]


def test_scaling_down_removes_the_highest_numbers_first_after_the_others_steps(render):
    specs = tuple(render(WEB.replace("replicas: 3", "replicas: 4")).values())
    fewer = tuple(render(WEB.replace("replicas: 3", "replicas: 2")).values())

    actions = plan(fewer, state_of(specs), [container_of(s) for s in specs], IMAGES)

    assert [(a.service, a.kind, a.reason) for a in actions] == [
        ("web.1", KEEP, "unchanged"), ("web.2", KEEP, "unchanged"),
        ("web.4", REMOVE, "scaled down"), ("web.3", REMOVE, "scaled down")]


def test_a_release_command_runs_once_before_the_first_replica_changes(render):
    specs = tuple(render(WEB).values())
    changed = tuple(render(WEB.replace("A: '1'", "A: '2'")).values())
    actions = plan(changed, state_of(specs), [container_of(s) for s in specs], IMAGES)

    assert releasing(actions, {"web": ["migrate"]}, state_of(specs), IMAGES) == {"web.1": ["migrate"]}


def test_every_replica_is_an_upstream_of_the_route_in_replica_order(render):
    specs = tuple(render(WEB).values())
    wanted = {"web": ROUTE}

    moves = route.moves((), "c1", wanted, plan(specs, None, [], {}), [], 1)

    assert [r.upstreams for r in moves.final] == [("r1.web.1.c1:8080", "r1.web.2.c1:8080", "r1.web.3.c1:8080")]
    config = route.config(moves.final, route.Router("caddy", 80, 443, "off", "", 2, 60))
    proxy = config["apps"]["http"]["servers"]["http"]["routes"][0]["handle"][0]
    assert [u["dial"] for u in proxy["upstreams"]] == list(moves.final[0].upstreams)
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "round_robin"}


def moved(render, text):
    """The Moves of deploying ``text`` (release 2) over WEB's release 1, routed as BEFORE."""
    specs = tuple(render(WEB).values())
    old = [container_of(s) for s in specs]
    actions = plan(tuple(render(text).values()), state_of(specs), old, IMAGES)
    return route.moves(BEFORE, "c1", {"web": ROUTE}, actions, old, 2)


def test_a_rolling_change_moves_one_upstream_at_each_step(render):
    moves = moved(render, WEB.replace("A: '1'", "A: '2'"))

    assert [moves.at[u][0].upstreams for u in ("web.1", "web.2", "web.3")] == [
        ("r2.web.1.c1:8080", "r1.web.2.c1:8080", "r1.web.3.c1:8080"),
        ("r2.web.1.c1:8080", "r2.web.2.c1:8080", "r1.web.3.c1:8080"),
        ("r2.web.1.c1:8080", "r2.web.2.c1:8080", "r2.web.3.c1:8080"),
    ]
    assert moves.final == moves.at["web.3"]


def test_a_replica_scaled_down_leaves_the_route_before_any_step(render):
    moves = moved(render, WEB.replace("replicas: 3", "replicas: 2"))

    assert moves.early[0].upstreams == moves.final[0].upstreams == ("r1.web.1.c1:8080", "r1.web.2.c1:8080")


def test_a_replica_of_a_service_named_like_a_release_scaled_down_leaves_the_route(render):
    db = "r2:\n  image: team/app\n  replicas: %d\n  volumes: [/data]\n  route: {domains: [db.example], port: 8080}\n"
    specs = tuple(render(db % 3).values())
    old = [container_of(s) for s in specs]
    before = (route.Route("db.example", "c1", "r2", "8080", "", ("r2.1.c1:8080", "r2.2.c1:8080", "r2.3.c1:8080")),)
    actions = plan(tuple(render(db % 2).values()), state_of(specs), old, IMAGES)

    moves = route.moves(before, "c1", {"r2": {**ROUTE, "domains": ["db.example"], "health": ""}}, actions, old, 2)

    assert not specs[0].start_first  # a volume: dialled by its replica's alias, no release in it
    assert moves.early[0].upstreams == moves.final[0].upstreams == ("r2.1.c1:8080", "r2.2.c1:8080")


def test_a_table_written_before_replicas_reads_as_one_upstream():
    text = '{"format": 1, "routes": [{"domain": "a.example", "health": "", "instance": "c1", "port": "80", ' \
           '"service": "web", "upstream": "r3.web.c1:80"}]}'

    assert route.read(text, "routes.json")[0].upstreams == ("r3.web.c1:80",)
    assert route.read(text, "routes.json")[0].containers == ("c1.web",)



def test_scale_takes_its_counts_as_words_after_the_instance():
    assert classic.translate(ns, ["-H", "h", "scale", "c1", "web=5", "worker=1", "--dry-run"]) == [
        "-H", "h", "scale", "c1", "--counts=web=5 worker=1", "--dry-run"]


def test_scaled_counts_beat_the_templates_replicas(parse):
    template = scaled(parse(WEB + "worker: {image: team/app}\n"), {"worker": 2})

    assert [s.options.get("replicas") for s in template.services] == [3, 2]


API = """\
api:
  image: team/app
  replicas: 3
  register: {8080: http}
app:
  image: team/app
  expose: {"api:http": {env: API_URLS, format: "http://{host}:{port}/"}}
"""


def test_expose_of_a_replicated_service_gives_every_replica_in_order_the_format_applied_to_each():
    specs, deps = rendered(API)

    env = dict(next(s for s in specs if s.service == "app").env)
    assert env["API_URLS"] == "http://api.1.c1:8080/,http://api.2.c1:8080/,http://api.3.c1:8080/"
    assert [s.unit for s in specs] == ["api.1", "api.2", "api.3", "app"] and deps["app"] == {"api"}


def test_each_replica_answers_at_its_own_name_besides_its_services():
    args = rendered(API)[0][1].run_args()

    assert values_of_aliases(args) == ["api.c1", "api.2.c1"]


WAN = "api: {image: team/app, replicas: %d, register: {8080: {name: http, wan: true}}}\n"


def ports_of(parse, count, recorded=None, taken=(), publish=False):
    """The host ports of endpoint api:http with ``count`` replicas, in replica order."""
    endpoints = discovery.allocate(parse(WAN % count), recorded or {}, set(taken), "10.0.0.1", "c1", publish)
    return endpoints["api:http"].host_ports or (endpoints["api:http"].host_port,)


def test_each_replica_publishes_its_own_host_port_and_a_consumer_on_the_host_reaches_each_by_name(parse):
    endpoints = discovery.allocate(parse(WAN % 3), {}, {30001}, "10.0.0.1", "c1")
    consumer = "app: {image: team/app, expose: {'api:http': {env: API, format: 'http://{host}:{port}/'}}}\n"
    specs = render_with(parse(WAN % 3 + consumer), endpoints)

    assert [s.ports for s in specs[:3]] == [("0.0.0.0:30000:8080",), ("0.0.0.0:30002:8080",), ("0.0.0.0:30003:8080",)]
    assert dict(specs[3].env)["API"] == "http://api.1.c1:8080/,http://api.2.c1:8080/,http://api.3.c1:8080/"
    assert endpoints["api:http"].to_dict() == {"address": "10.0.0.1", "host_port": 30000, "port": 8080, "wan": True,
                                               "host_ports": [30000, 30002, 30003]}


def render_with(parsed, endpoints):
    return spec.render(parsed, "c1", "/v", plugins.installed(), {}, endpoints)


def test_a_replica_keeps_its_host_port_and_scaling_adds_or_drops_the_last_ones(parse):
    recorded = {"api:http": [30005, 30001, 30007]}

    assert ports_of(parse, 3, recorded) == (30005, 30001, 30007)
    assert ports_of(parse, 2, recorded) == (30005, 30001)
    assert ports_of(parse, 4, recorded, taken={30000}) == (30005, 30001, 30007, 30002)
    assert ports_of(parse, 3, recorded, publish=True) == (30005, 30001, 30007)  # etcd: the same


def test_one_container_becoming_replicas_or_back_gets_new_host_ports_its_old_one_holds_its_own(parse):
    assert ports_of(parse, 3, {"api:http": [30000]}) == (30001, 30002, 30003)
    assert ports_of(parse, 1, {"api:http": [30001, 30002]}) == (30000,)
    assert ports_of(parse, 1, {"api:http": [30000]}) == (30000,)


def test_a_consumer_on_another_host_gets_every_replicas_published_address_in_order():
    remote = discovery.Endpoint("10.0.0.7", 30004, 8080, host_ports=(30004, 30001))  # etcd: no name on this host
    one = discovery.Endpoint("10.0.0.7", 30004, 8080)

    assert remote.addresses == [("10.0.0.7", 30004), ("10.0.0.7", 30001)]
    assert one.addresses == [("10.0.0.7", 30004)]
    assert discovery.host_ports(remote.to_dict()) == [30004, 30001] and discovery.host_ports(one.to_dict()) == [30004]
    assert discovery.host_ports({"address": "", "host_port": 0, "port": 80, "wan": False}) == []


def test_a_consumer_of_new_replicas_starts_in_the_wave_after_them():
    specs, deps = rendered(API)

    assert waves(plan(specs, None, [], {}), deps) == {"api.1": 0, "api.2": 0, "api.3": 0, "app": 1}


def values_of_aliases(args):
    return [value for option, value in zip(args, args[1:]) if option == "--network-alias"]


def test_an_unchanged_replicated_service_keeps_every_replica_and_compiles_to_no_step(render):
    specs = tuple(render(WEB).values())

    actions = plan(specs, state_of(specs), [container_of(s) for s in specs], IMAGES)

    assert [a.kind for a in actions] == [KEEP] * 3
    assert plan_script("c1", actions, "B", LIMITS, 2) == plan_script("c1", (), "B", LIMITS, 2)  # no docker call
