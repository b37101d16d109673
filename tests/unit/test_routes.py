"""Routes (model/route.py): the template's ``route`` key, the host's route table, how a
deploy moves it, and the router's whole config rendered from it."""

import json

import pytest

from deployer.errors import DeployerError
from deployer.model import route
from deployer.model.plan import CREATE, KEEP, RECREATE, REMOVE, Action
from deployer.remote.apply import Routing
from deployer.settings import Settings
from plans import container_of

ROUTED = """\
web:
  image: team/app
  route: {domains: [Shop.Example, "*.shop.example"], port: 8080, health: /up}
"""
INTERNAL = Settings(router_tls="internal", router_http_port=8080, router_https_port=8443).router


def row(domain, instance="c1", service="web", upstream="r1.web.c1:8080", health="/up"):
    return route.Route(domain, instance, service, "8080", health, (upstream,))


# -- the template's route ------------------------------------------------------------------


def test_a_route_gives_domains_lower_cased_a_port_and_a_health_path(parse):
    (web,) = parse(ROUTED).services

    assert web.options["route"] == {"domains": ["shop.example", "*.shop.example"], "port": "8080", "health": "/up"}


def test_a_routed_container_is_labelled_with_its_port_only(render):
    labels = dict(render(ROUTED)["web"].labels)
    other = dict(render(ROUTED.replace("Shop.Example", "other.example"))["web"].labels)

    assert labels["deployer.route"] == "8080" and labels == other  # new domains replace no container


@pytest.mark.parametrize(
    "value, key, message",
    [
        ("{domains: [shop.example]}", "web.route.port", "required key not provided"),
        ("{domains: ['http://shop.example'], port: 80}", "web.route.domains[0]", "no scheme, path or port"),
        ("{domains: [shop.example/x], port: 80}", "web.route.domains[0]", "expected a domain"),
        ("{domains: ['shop.example:80'], port: 80}", "web.route.domains[0]", "expected a domain"),
        ("{domains: ['a.*.example'], port: 80}", "web.route.domains[0]", "expected a domain"),
        ("{domains: [], port: 80}", "web.route.domains", "expected at least one domain"),
        ("{domains: [shop.example], port: 70000}", "web.route.port", "expected a container port number"),
        ("{domains: [shop.example], port: 80, health: up}", "web.route.health", "expected a path starting with '/'"),
        ("{domains: [shop.example], port: 80, health: '/a b'}", "web.route.health", "no spaces"),
        ("{domains: [shop.example], port: 80, tls: on}", "web.route.tls", "unknown key"),
        ("shop.example", "web.route", "expected a mapping with domains, port"),
    ],
)
def test_a_bad_route_is_an_error_naming_file_and_key(template_error, value, key, message):
    error = template_error(f"web:\n  image: team/app\n  route: {value}\n")

    assert error.file == "app.yaml" and error.key == key and message in error.message and error.exit_code == 2


def test_a_domain_two_services_give_is_an_error_naming_the_second(parse):
    template = parse(ROUTED + "api:\n  image: team/api\n  route: {domains: [shop.example], port: 80}\n")

    with pytest.raises(DeployerError) as caught:
        route.wanted(template)
    assert str(caught.value) == ("app.yaml: api.route.domains: domain shop.example is also web's: a domain is "
                                 "served by one service") and caught.value.exit_code == 2


def test_placeholders_count_as_a_label_of_a_domain(parse):
    (web,) = parse("web: {image: a, route: {domains: ['{instance}.shop.example'], port: 80}}").services

    assert web.options["route"]["domains"] == ["{instance}.shop.example"]


# -- the table -----------------------------------------------------------------------------


def test_the_table_is_a_route_a_line_and_reads_back_as_written():
    table = (row("b.example"), row("a.example", "c2", upstream="web.c2:8080", health=""))

    text = route.dump(table)

    assert text.count("\n") == 4 and '"instance": "c2"' in text.splitlines()[1]
    assert route.read(text, "h:routes.json") == tuple(sorted(table)) and route.read("", "x") == ()


@pytest.mark.parametrize("service, dial, container", [
    ("web", "r7.web.2.c1:80", "c1.web.2"),  # a replica replaced start-first: its release's alias
    ("web", "web.2.c1:80", "c1.web.2"),  # stop-first: its own alias
    ("r2", "r2.3.c1:80", "c1.r2.3"),  # a service named like a release, stop-first
    ("r2", "r5.r2.3.c1:80", "c1.r2.3"),
    ("r2.web", "r2.web.c1:80", "c1.r2.web"),  # a dotted name whose first word reads as a release
    ("r2.web", "r4.r2.web.c1:80", "c1.r2.web"),
    ("web", "r2.web.c1:80", "c1.web"),
])
def test_a_route_names_the_container_each_upstream_dials(service, dial, container):
    routed = route.Route("shop.example", "c1", service, "80", "", (dial,))

    assert routed.containers == (container,)


def test_a_corrupt_table_is_an_error_naming_its_file():
    with pytest.raises(DeployerError) as caught:
        route.read('{"routes": [{"domain": 1}]}', "web1:/var/lib/deployer/router/routes.json")

    assert str(caught.value).startswith("web1:/var/lib/deployer/router/routes.json: corrupt route table")


def test_a_domain_another_instance_holds_is_refused_naming_that_instance():
    with pytest.raises(DeployerError) as caught:
        route.check((row("shop.example", "customer1"),), "customer2", {"web": {"domains": ["shop.example"]}})

    assert "domain shop.example is served by instance 'customer1'" in str(caught.value)
    route.check((row("shop.example", "customer1"),), "customer1", {"web": {"domains": ["shop.example"]}})


# -- how a deploy moves it -----------------------------------------------------------------


def specs(render, text=ROUTED):
    return render(text)


def test_a_new_routed_service_gets_its_routes_once_every_step_is_done(render):
    web = specs(render)["web"]

    moves = route.moves((), "c1", {"web": web_route()}, [Action(CREATE, "web", "new", web)], [], 1)

    assert moves.at == {} and [r.upstreams for r in moves.final] == [("r1.web.c1:8080",)]
    assert moves.said() == ["+shop.example (web)"]


def web_route(domains=("shop.example",), health="/up"):
    return {"domains": list(domains), "port": "8080", "health": health}


def test_a_recreated_start_first_service_moves_to_its_new_containers_own_alias(render):
    web = specs(render)["web"]
    before = (row("shop.example"), row("other.example", "c2", upstream="web.c2:80"))

    moves = route.moves(before, "c1", {"web": web_route()}, [Action(RECREATE, "web", "env", web, "c1.web.r1")],
                        [container_of(web, release=1)], 2)

    assert [r.upstreams for r in moves.at["web"] if r.instance == "c1"] == [("r2.web.c1:8080",)]
    assert moves.said() == ["shop.example moved (web)"] and moves.changed and moves


def test_a_stop_first_service_is_dialled_by_its_service_alias(render):
    db = render("db: {image: team/db, volumes: [/data], route: {domains: [db.example], port: 8080}}")["db"]

    moves = route.moves((), "c1", {"db": web_route(["db.example"], "")}, [Action(RECREATE, "db", "x", db, "c1.db.r1")],
                        [], 2)

    assert not db.start_first and [r.upstreams for r in moves.final] == [("db.c1:8080",)]


def test_a_rollback_moves_the_route_to_the_retained_containers_alias(render):
    web = specs(render)["web"]
    retained = container_of(web, release=1, name="c1.web.r1", status="exited")
    action = Action(RECREATE, "web", "env", web, "c1.web.r3", reuse="c1.web.r1")

    moves = route.moves((row("shop.example", upstream="r3.web.c1:8080"),), "c1", {"web": web_route()}, [action],
                        [retained], 4)

    assert [r.upstreams for r in moves.final] == [("r1.web.c1:8080",)]


def test_routes_that_go_leave_before_any_step_and_new_domains_of_a_kept_service_come_at_the_end(render):
    web = specs(render)["web"]
    before = (row("shop.example"), row("api.example", service="api"))
    actions = [Action(REMOVE, "api", "not in the template"), Action(KEEP, "web", "unchanged", web)]

    moves = route.moves(before, "c1", {"web": web_route(["shop.example", "new.example"])}, actions,
                        [container_of(web, release=1)], 2)

    assert moves.early == (row("shop.example"),) and moves.at == {}
    assert {r.domain for r in moves.final} == {"shop.example", "new.example"}
    assert moves.said() == ["-api.example", "+new.example (web)"]


def test_a_service_the_template_renamed_takes_its_domain_from_the_old_one_which_goes_last_drained(render):
    app = specs(render, ROUTED.replace("web:", "app:"))["app"]
    before = (row("shop.example", upstream="web.c1:8080"),)
    actions = [Action(CREATE, "app", "new", app), Action(REMOVE, "web", "not in the template", late=True)]

    moves = route.moves(before, "c1", {"app": web_route()}, actions, [], 2)
    lines = Routing(moves, INTERNAL, "c1").lines(actions)

    assert moves.early == before  # the old service serves the domain until the new one does
    assert moves.final == (row("shop.example", service="app", upstream="r2.app.c1:8080"),)
    assert moves.said() == ["shop.example moved (app)"]
    assert lines.drain == INTERNAL.drain


def test_an_instance_without_routes_on_a_host_with_some_has_nothing_to_move():
    moves = route.moves((row("shop.example", "c2"),), "c1", {}, [], [], 1)

    assert not moves and not moves.changed


# -- the router's config -------------------------------------------------------------------


def test_tls_internal_serves_https_redirects_http_and_answers_404_to_unknown_names():
    table = (row("shop.example"), row("*.shop.example"), row("a.shop.example", "c2", upstream="web.c2:80"))

    config = json.loads(route.rendered(table, INTERNAL))

    servers = config["apps"]["http"]["servers"]
    hosts = [r["match"][0]["host"] for r in servers["https"]["routes"]]
    assert hosts == [["a.shop.example"], ["shop.example"], ["*.shop.example"]]  # exact names before wildcards
    proxy = servers["https"]["routes"][1]["handle"][0]
    assert proxy["upstreams"] == [{"dial": "r1.web.c1:8080"}] and proxy["load_balancing"]["try_duration"] == "60s"
    redirect, missing = servers["http"]["routes"]
    assert redirect["handle"][0]["headers"]["Location"] == ["https://{http.request.host}:8443{http.request.uri}"]
    assert missing["handle"][0] == {"handler": "static_response", "status_code": 404, "body": route.NOT_FOUND}
    assert route.NOT_FOUND.count("\n") == 1
    assert config["apps"]["tls"]["automation"]["policies"] == [{"issuers": [{"module": "internal"}]}]
    assert config["admin"] == {"listen": "localhost:2019"}  # the router's own loopback


def test_tls_off_serves_plain_http_and_acme_names_its_email():
    off = json.loads(route.rendered((row("shop.example"),), Settings(router_tls="off").router))
    acme = json.loads(route.rendered((), Settings(router_email="ops@shop.example").router))

    assert list(off["apps"]["http"]["servers"]) == ["http"] and "tls" not in off["apps"]
    assert off["apps"]["http"]["servers"]["http"]["routes"][0]["handle"][0]["handler"] == "reverse_proxy"
    issuers = acme["apps"]["tls"]["automation"]["policies"][0]["issuers"]
    assert issuers == [{"module": "acme", "email": "ops@shop.example"}]


def test_the_router_publishes_its_ports_and_is_replaced_when_it_should_run_otherwise():
    args = INTERNAL.run_args()

    assert args[:5] == ["--dpl-sysctl", "net.ipv4.tcp_migrate_req=1", "-d", "--name", "deployer-router"]
    assert "8443:8443" in args and "8080:8080" in args
    assert args[args.index("--network") + 1] == "deployer-router"
    assert "8443:8443" not in Settings(router_tls="off", router_https_port=8443).router.run_args()
    assert Settings(router_image="caddy:2.7").router.digest != Settings().router.digest


def test_a_deploy_that_stopped_holds_the_table_of_the_routes_moved_before_it(render):
    web, api = specs(render)["web"], render("api: {image: team/api, route: {domains: [api.example], port: 80}}")["api"]
    actions = [Action(RECREATE, "web", "env", web, "c1.web.r1"), Action(RECREATE, "api", "env", api, "c1.api.r1")]
    wanted = {"web": web_route(), "api": {"domains": ["api.example"], "port": "80"}}
    before = (row("shop.example"), row("api.example", service="api", upstream="r1.api.c1:80", health=""))

    moves = route.moves(before, "c1", wanted, actions, [container_of(web, release=1)], 2)

    assert moves.held({"web"}, False) == moves.at["web"] and moves.held(set(), False) == moves.early == before
    assert moves.held({"web", "api"}, True) == moves.final
    assert route.given(moves.held({"web"}, False), "c1") == {
        "api": {"domains": ["api.example"], "port": "8080"}, "web": web_route()}
