"""Routes on a swarm (swarm/router.py and sh/router.sh): what the global router serves of the
table, the lines a deploy moves routes with (a rollout loads no config), a routed service
on the router's network, and the shell's table swap against the stub docker."""

import json
import shlex

from deployer.model import route
from deployer.model.route import Moves, Route, Router
from deployer.model.state import Container, InstanceState, ServiceState
from deployer.remote.scripts import call
from deployer.swarm import router, service
from deployer.swarm.manager import Manager

ROUTER_SETTINGS = Router("local/caddy", 80, 443, "internal", "", 10, 30)
WEB = "web:\n  image: team/web\n  route: {domains: [a.test], port: 8080}\n"


def row(domain="a.test", dial="r7.web.c1:8080", instance="c1"):
    return Route(domain, instance, "web", "8080", "", (dial,))


def handlers(text):
    whole = json.loads(text)
    servers = whole["apps"]["http"]["servers"].values()
    return whole, [h for s in servers for r in s["routes"] for h in r["handle"] if h["handler"] == "reverse_proxy"]


def args(line):
    return shlex.split(line.removesuffix(" || exit 1"))


def test_a_route_dials_its_service_s_name_resolved_again_every_second_whichever_task_the_table_names():
    assert router.table([row(dial="r7.web.c1:8080")]) == router.table([row(dial="web.c1:8080")])

    whole, (proxy,) = handlers(router.config(router.table([row()]), ROUTER_SETTINGS))

    assert proxy["dynamic_upstreams"] == {"source": "a", "name": "web.c1", "port": "8080", "refresh": "1s"}
    assert "upstreams" not in proxy and proxy["load_balancing"]["try_duration"] == "30s"
    assert whole["admin"] == {"listen": "unix//deployer/admin.sock"}  # on no network


def test_the_core_sees_an_instance_s_kept_rows_as_it_names_them_and_other_instances_rows_as_kept(render):
    web = render(WEB)["web"]
    state = InstanceState("c1", "shop.yaml", 7, "", "", services={"web": ServiceState.of(web, "")})
    running = Container(name="c1.web", service="web", running=True, status="", image="team/web", image_id="",
                        config_hash=web.config_hash, created="", release=7, ports=())
    kept = router.table([row(), row("b.test", instance="c2")])

    assert router.moved(kept, "c1", state, (running,)) == (row(dial="r7.web.c1:8080"), kept[1])


def test_the_core_sees_a_replicated_service_s_row_dialling_each_replica_in_order(render):
    specs = render(WEB.replace("image: team/web", "image: team/web\n  replicas: 2"))
    state = InstanceState("c1", "shop.yaml", 7, "", "", services={u: ServiceState.of(s, "") for u, s in specs.items()})
    running = [Container(name=s.name, service="web", running=True, status="", image="team/web", image_id="",
                         config_hash=s.config_hash, created="", release=7, ports=(), replica=s.replica)
               for s in reversed(specs.values())]

    (moved,) = router.moved(router.table([row()]), "c1", state, running)

    assert moved.upstreams == ("r7.web.1.c1:8080", "r7.web.2.c1:8080")


def test_a_rollout_changes_no_table_and_loads_no_router_config():
    before, after = (row(dial="r7.web.c1:8080"),), (row(dial="r8.web.c1:8080"),)

    first, then = router.lines(Moves("c1", before, before, {}, after), ROUTER_SETTINGS, 30)

    assert [args(line)[0] for line in first] == ["dpl_swarm_router_up"] and then == []


def test_a_domain_that_goes_leaves_before_the_steps_and_one_that_comes_after_them_each_loaded_everywhere():
    old, new = (row("old.test"),), (row("new.test"),)

    first, then = router.lines(Moves("c1", old, (), {}, new), ROUTER_SETTINGS, 30)

    kept_old, kept_new = router.table(old), router.table(new)
    assert args(first[1]) == ["dpl_swarm_router_load", "30", route.dump(kept_old), route.dump(()),
                              router.config((), ROUTER_SETTINGS), "local/caddy"]
    assert args(then[0]) == ["dpl_swarm_router_load", "30", route.dump(()), route.dump(kept_new),
                             router.config(kept_new, ROUTER_SETTINGS), "local/caddy"]


def test_an_unchanged_routed_instance_only_makes_sure_the_router_runs():
    table = (row(),)

    assert router.lines(Moves("c1", table, table, {}, table), ROUTER_SETTINGS, 30)[1] == []


def test_the_router_is_a_global_service_publishing_its_ports_in_host_mode_and_made_anew_when_settings_change():
    up = args(router.up((), ROUTER_SETTINGS, 30))

    assert "global" in up and "mode=host,target=443,published=443,protocol=tcp" in up
    assert up[-5:] == ["caddy", "run", "--resume", "--config", "/deployer-base.json"]
    changed = Router("local/caddy", 8080, 443, "internal", "", 10, 30)
    assert router.digest(changed) != router.digest(ROUTER_SETTINGS)


def test_a_routed_service_joins_the_router_s_network_under_its_alias_and_leaves_it_without_a_route(render):
    routed, plain = render(WEB)["web"], render(WEB.replace("  route: {domains: [a.test], port: 8080}\n", ""))["web"]

    created = service.create_args(routed, 1)
    assert [created[i + 1] for i, a in enumerate(created) if a == "--network"] == [
        "name=deployer-c1,alias=web.c1", "name=deployer-router,alias=web.c1"]
    assert service.create_args(plain, 1).count("--network") == 1
    updated = service.update_args(routed.to_dict(), plain, 2)
    assert updated[updated.index("--network-rm") + 1] == "deployer-router"
    assert "name=deployer-router,alias=web.c1" in service.update_args(plain.to_dict(), routed, 2)


def test_the_routes_verb_says_running_when_every_task_wanted_runs():
    rows = router.table([row(), row("b.test", instance="c2")])

    states = router.states(rows, "c1_web 1/1\nc2_web 0/1\n", service.name)

    assert states == {"c1.web": "running", "c2.web": "running 0/1"}


def test_a_table_changed_since_it_was_read_changes_nothing_and_says_run_it_again(shell):
    shell.docker.answer("config ls --filter label=deployer.routes --format {{.Name}}",
                        "deployer-routes-3\ndeployer-routes-4\n")
    shell.docker.answer("config inspect --format {{printf \"%s\" .Spec.Data}} deployer-routes-4", "someone else's\n")

    ran = shell.run(call("dpl_swarm_router_load", 5, "what was read\n", "new table\n", "{}", "local/caddy"),
                    Manager.FACTS)

    assert ran.exited == 1 and "the swarm's routes changed while this deploy ran" in ran.error.message
    assert not [c for c in shell.docker.calls() if c[:2] in (("config", "create"), ("service", "create"))]


def test_a_table_still_as_read_becomes_the_next_config_and_every_node_loads_it(shell):
    shell.docker.answer("config ls --filter label=deployer.routes --format {{.Name}}", "deployer-routes-4\n")
    shell.docker.answer("config inspect --format {{printf \"%s\" .Spec.Data}} deployer-routes-4", "read\n")
    shell.docker.answer("service ps --format {{.Node}} {{.CurrentState}} deployer-router-load-*",
                        "m Complete 1 second ago\nw Complete now\n")
    shell.docker.answer("service ps --format {{.Node}} {{.CurrentState}} deployer-router-load-*",
                        "m Complete 1 second ago\nw Running 1 second ago\n", nth=1)

    ran = shell.run(call("dpl_swarm_router_load", 5, "read\n", "new table\n", "{}", "local/caddy"), Manager.FACTS)

    assert ran.exited == 0, ran.error
    calls = shell.docker.calls()
    assert ("config", "create", "--label", "deployer.routes=5", "deployer-routes-5", "-") in calls
    job = next(c for c in calls if c[:2] == ("service", "create"))
    assert "global-job" in job and job[-7:] == ("local/caddy", "caddy", "reload", "--config", "/caddy.json",
                                                 "--address", "unix//deployer/admin.sock")
    assert sum(1 for c in calls if c[:2] == ("service", "ps")) == 2  # until both nodes' tasks completed


def test_of_two_deploys_swapping_the_same_table_at_once_the_second_changes_nothing(shell):
    shell.docker.answer("config inspect --format {{printf \"%s\" .Spec.Data}} deployer-routes-*", "read\n")
    shell.docker.answer("config ls --filter label=deployer.routes --format {{.Name}}", "deployer-routes-4\n")
    shell.docker.fail("config create --label deployer.routes=5 deployer-routes-5 -",
                      stderr="Error response from daemon: rpc error: code = AlreadyExists desc = config "
                             "deployer-routes-5 already exists\n")

    ran = shell.run(call("dpl_swarm_router_load", 5, "read\n", "new table\n", "{}", "local/caddy"), Manager.FACTS)

    assert ran.exited == 1 and "the swarm's routes changed while this deploy ran" in ran.error.message
    assert not [c for c in shell.docker.calls() if c[:2] == ("service", "create")]  # no router told anything


def test_a_node_whose_router_did_not_load_the_table_fails_the_deploy_naming_it_and_why(shell):
    shell.docker.answer("service ps --format {{.Node}} {{.CurrentState}} deployer-router-load-*",
                        "m Complete 1 second ago\nw Failed 1 second ago\n")
    shell.docker.answer("service ps --no-trunc --format {{.Node}} {{.CurrentState}} {{.Error}} deployer-router-load-*",
                        "m Complete 1 second ago \nw Failed 1 second ago task: non-zero exit (1)\n")

    ran = shell.run(call("dpl_swarm_router_push", 1, "{}", "local/caddy"), Manager.FACTS)

    assert ran.exited == 1
    assert "did not load its routes on every node within 1 s: not on w Failed 1 second ago task: non-zero exit (1)" \
        in ran.error.message and "not on m" not in ran.error.message
    assert [c[:2] for c in shell.docker.calls()][-2:] == [("service", "rm"), ("config", "rm")]  # the job goes
