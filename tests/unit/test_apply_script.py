"""The script a plan compiles to (apply.py), golden-tested like Kamal's command tests, and
run for real against the stub docker.

Each case of ``plans.CASES`` is planned by the real core; the lines it compiles to must
equal ``golden/<case>.sh`` exactly, and so must a whole apply turn (``golden/apply-turn.sh``:
the plan, the template, the state and the history). After a deliberate change to what a
plan compiles to, rewrite the files and review the diff:

    DEPLOYER_GOLDEN=update python3 -m pytest tests/unit/test_apply_script.py
    git diff tests/unit/golden
"""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from deployer.model import network, route, template
from deployer.model.plan import CREATE, KEEP
from deployer.model.state import Container, InstanceState
from deployer.remote import host
from deployer.remote.apply import Routing, plan_script, record, waves
from deployer.settings import Settings
from plans import CASES, LIMITS, Case, deploy_turns
from stubdocker import BOUNDARY

GOLDEN = Path(__file__).parent / "golden"


def golden(name, text):
    """The golden text of ``name`` (rewritten first with DEPLOYER_GOLDEN=update)."""
    path = GOLDEN / f"{name.replace(' ', '-')}.sh"
    if os.environ.get("DEPLOYER_GOLDEN") == "update":
        path.write_text(text)
    return path.read_text()


def compiled(case):
    release = case.release + 1 if case.before else 1
    specs, deps = case.specs()
    networks = () if case.before else network.missing(specs, set(), "c1")  # a first deploy creates them
    actions = case.actions()
    lines = plan_script("c1", actions, BOUNDARY, LIMITS, release, deps, networks, case.releasing(actions))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", CASES)
def test_a_plan_compiles_to_its_golden_script(name):
    script = compiled(CASES[name])

    assert script == golden(name, script)


ROUTED = "web: {image: team/app, env: {A: '%s'}, route: {domains: [shop.example], port: 8080, health: /up}}\n"
REPLICAS = ROUTED.replace("{image: team/app,", "{image: team/app, replicas: 3,")
HELD = (route.Route("shop.example", "c1", "web", "8080", "/up", ("r1.web.c1:8080",)),
        route.Route("other.example", "c2", "api", "80", "", ("api.c2:80",)))  # another instance's route
ROUTED_CASES = {  # name -> (case, the table before)
    "routed create": (Case(ROUTED % 1), HELD[1:]),
    "routed recreate start-first": (Case(ROUTED % 2, before=ROUTED % 1), HELD),
    "routed rollback": (Case(ROUTED % 1, before=ROUTED % 2, release=2, retained=((ROUTED % 1, 1),)),
                        (route.Route("shop.example", "c1", "web", "8080", "/up", ("r2.web.c1:8080",)), HELD[1])),
    "routes removed": (Case("web: {image: team/app}", before=ROUTED % 1), HELD),
    # each replica a step, start-first; a failing one puts back those replaced before it
    "routed replicas rolled": (Case(REPLICAS % 2, before=REPLICAS % 1),
                               (route.Route("shop.example", "c1", "web", "8080", "/up",
                                            ("r1.web.1.c1:8080", "r1.web.2.c1:8080", "r1.web.3.c1:8080")),)),
    # the one container serves until its replicas do (the table's last change), then goes, drained
    "routed one container becoming replicas": (Case(REPLICAS % 1, before=ROUTED % 1), HELD),
    "routed replicas becoming one container": (Case(ROUTED % 1, before=REPLICAS % 1),
                                               (route.Route("shop.example", "c1", "web", "8080", "/up",
                                                            ("r1.web.1.c1:8080", "r1.web.2.c1:8080",
                                                             "r1.web.3.c1:8080")),)),
}


@pytest.mark.parametrize("name", ROUTED_CASES)
def test_a_routed_plan_compiles_to_its_golden_script(name):
    script = routed(*ROUTED_CASES[name])

    assert script == golden(name, script)


def routed(case, table, limits=LIMITS):
    """The script of a routed case's plan, the host's table before it being ``table``."""
    actions = case.actions()
    release = case.release + 1 if case.before else 1
    wanted = route.wanted(template.parse(case.template, "app.yaml"))
    moves = route.moves(table, "c1", wanted, actions, [Container.from_inspect(c) for c in case.inspected()], release)
    routing = Routing(moves, Settings(router_tls="internal", router_drain=2).router, "c1")
    return "\n".join(plan_script("c1", actions, BOUNDARY, limits, release, case.specs()[1], (), routing=routing)) + "\n"


def test_replicas_rolled_two_at_a_time_compile_to_their_golden_script():
    script = routed(*ROUTED_CASES["routed replicas rolled"], dataclasses.replace(LIMITS, batch=2))

    assert script == golden("routed replicas rolled two at a time", script)


def test_a_plan_that_keeps_everything_compiles_to_no_step():
    case = Case("web: {image: team/app}", before="web: {image: team/app}")

    assert [a.kind for a in case.actions()] == [KEEP]
    assert compiled(case) == 'I=c1; D="$S/instances/$I"\nDPL_HEALTH_TIMEOUT=60 DPL_MIN_UPTIME=1.0 DPL_SUBNETS=10.211.0.0/16\n'


def test_new_services_start_in_waves_each_after_the_services_it_exposes():
    actions = CASES["create in waves"].actions()

    assert [a.kind for a in actions] == [CREATE] * 4
    assert waves(actions, CASES["create in waves"].specs()[1]) == {"db": 0, "cache": 0, "app": 1, "web": 2}


def test_only_new_services_count_for_waves():
    actions = CASES["mixed"].actions()

    assert waves(actions, {"cache": {"web", "db"}}) == {"cache": 0}


# -- the apply turn, for real: Deploy.apply on the stub docker ----------------------------


@pytest.fixture
def fixed_boundary(monkeypatch):
    monkeypatch.setattr(host, "new_boundary", lambda: BOUNDARY)


def test_an_apply_turn_is_the_plan_then_the_template_state_and_history_written(shell, fixed_boundary):
    (_, turn), done, error = deploy_turns(shell, CASES["recreate start-first"])

    assert turn == golden("apply turn", turn)
    assert (done, error) == ({"web"}, None)


@pytest.mark.parametrize("name", CASES)
def test_each_case_deploys_on_the_stub_engine_and_is_recorded(shell, name):
    case = CASES[name]

    _, done, error = deploy_turns(shell, case)

    assert error is None
    assert done == {a.service for a in case.actions() if a.kind != KEEP}
    state = InstanceState.from_json((shell.instance_dir / "state.json").read_text(), "state.json")
    assert sorted(state.services) == sorted(s.service for s in case.specs()[0])
    assert (shell.instance_dir / "template.yaml").read_text() == case.template
    assert len((shell.instance_dir / "history.jsonl").read_text().splitlines()) == 1


def test_a_rollback_runs_the_retained_containers_again_and_keeps_the_current_ones(shell):
    deploy_turns(shell, CASES["rollback"])

    assert shell.docker.containers() == {
        "c1.db": "c1.db.r1 running", "c1.db.r2": "c1.db exited",
        "c1.web": "c1.web.r1 running", "c1.web.r2": "c1.web exited",
    }


def test_a_leftover_next_container_is_removed_before_the_new_one_starts(shell):
    deploy_turns(shell, CASES["recreate start-first after a deploy was cut off"])

    log = shell.docker.log()
    assert log.index("run c1.web.next") == log.index("rm -f c1.web.next") + 1
    assert shell.docker.containers() == {"c1.web": "new1 running", "c1.web.r1": "c1.web exited"}


def test_retained_containers_beyond_the_retention_count_are_removed(shell):
    deploy_turns(shell, CASES["prune"])

    assert shell.docker.containers() == {"c1.web": "new1 running", "c1.web.r3": "c1.web exited"}


def test_secrets_reach_docker_in_an_env_file_never_in_its_arguments(shell):
    deploy_turns(shell, CASES["secrets"])

    assert [shell.docker.env_file(id) for id in ("new1", "new2")] == ["PW=it's $secret\n"] * 2  # worker, web
    assert not any("it's $secret" in arg for call in shell.docker.calls() for arg in call)


def test_a_failed_step_stops_the_plan_and_says_which_steps_were_done(shell):
    shell.docker.fail("run * c1.web.next *")

    _, done, error = deploy_turns(shell, CASES["mixed"])

    assert done == set()  # "old", dropped from the template, is removed once the rest are done: it still runs
    assert shell.docker.containers()["c1.old"] == "c1.old running"
    assert error.message == "Error response from daemon: stub failure"
    assert not (shell.instance_dir / "history.jsonl").exists()


def test_the_lock_is_held_until_the_client_is_done_after_the_plan_ran(shell):
    """What the client does then (its post-deploy hook) comes before any other deploy."""
    seen = []

    def held(ok, done):
        seen.append((ok, done, shell.run('dpl_lock "$D" 0 bob || exit 1', uses=()).exited))

    _, done, error = deploy_turns(shell, CASES["mixed"], held=held)

    assert seen == [(True, done, 1)] and error is None
    assert shell.run('dpl_lock "$D" 0 bob || exit 1', uses=()).exited == 0


def test_a_failed_plan_is_said_to_the_client_while_the_lock_is_still_held(shell):
    shell.docker.fail("run * c1.web.next *")
    seen = []

    _, done, error = deploy_turns(shell, CASES["mixed"], held=lambda ok, done: seen.append((ok, done)))

    assert seen == [(False, set())] and done == set() and error is not None


@pytest.mark.parametrize("sent", ["9999\ndocker rm -f c1.web\n", "docker rm -f c1.web\n", ""],
                         ids=["cut off", "no size", "nothing"])
def test_a_plan_that_did_not_arrive_whole_is_not_run_and_frees_the_lock(shell, sent):
    shell.docker.container("c1.web")
    with shell.host().deploying("c1", (), "ops@laptop", 0) as deploy:
        deploy.session.send(sent)
        ended = deploy.finish()

    assert ended.exited == 0 and shell.docker.containers() == {"c1.web": "c1.web running"}
    assert shell.run('dpl_lock "$D" 0 bob || exit 1', uses=()).exited == 0


# -- record(): state.json and the history -------------------------------------------------


def entry(release, template):
    """A history line as InstanceState.record makes it (the template's text and hash)."""
    return {"release": release, "template_sha256": f"t{len(template)}", "template_text": template}


def test_recording_keeps_only_the_newest_releases_the_history_may_hold_and_the_templates_they_name(shell):
    state = InstanceState("c1", "app.yaml", 1, "", "")
    lines = "\n".join(record(state, entry(n, "x" * n), history=2) for n in (1, 2, 3))

    assert shell.run(f'mkdir -p "$D"\n{lines}', uses=()).exited == 0
    history = [json.loads(line) for line in (shell.instance_dir / "history.jsonl").read_text().splitlines()]
    assert history == [{"release": 2, "template_sha256": "t2"}, {"release": 3, "template_sha256": "t3"}]
    templates = {p.name: p.read_text() for p in (shell.instance_dir / "templates").iterdir()}
    assert templates == {"t2.yaml": "xx", "t3.yaml": "xxx"}
    assert InstanceState.from_json((shell.instance_dir / "state.json").read_text(), "state.json") == state


def test_a_template_deployed_again_is_kept_once(shell):
    state = InstanceState("c1", "app.yaml", 1, "", "")
    lines = "\n".join(record(state, entry(n, "same"), history=0) for n in (1, 2, 3))

    assert shell.run(f'mkdir -p "$D"\n{lines}', uses=()).exited == 0
    assert len((shell.instance_dir / "history.jsonl").read_text().splitlines()) == 3
    assert [p.name for p in (shell.instance_dir / "templates").iterdir()] == ["t4.yaml"]


def test_without_a_history_limit_every_release_is_kept():
    assert "dpl_trim_history" not in record(InstanceState("c1", "app.yaml", 1, "", ""), entry(1, "t"))


def test_a_first_deploy_that_changed_nothing_records_its_history_line_and_no_state(shell):
    assert shell.run(f'mkdir -p "$D"\n{record(None, entry(0, "t"))}', uses=()).exited == 0

    assert json.loads((shell.instance_dir / "history.jsonl").read_text()) == {"release": 0, "template_sha256": "t1"}
    assert not (shell.instance_dir / "state.json").exists()
