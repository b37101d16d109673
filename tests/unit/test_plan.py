"""plan(): the template's specs vs what the host has -> the ordered actions of a deploy.

Table-driven like pyinfra's operation tests: each case is a template, the facts of a
host (its state file, Docker's labelled containers, the image ids it has) and the
actions a user sees in the deploy table (SERVICE, ACTION, WHY). As in pyinfra, a second
run after applying a plan must find nothing to do.
"""

import dataclasses

import pytest

from deployer.model.plan import CREATE, KEEP, RECREATE, REMOVE, REPAIR, plan, releasing
from deployer.model.state import Container
from plans import IMAGES, NEW_ID, container_of, inspected, state_of

NEW = (CREATE, "new")
GONE = (REMOVE, "not in the template")

TEMPLATE = """
web: {image: team/app, cmd: serve, env: {A: '1'}}
db: {image: postgres}
"""


@pytest.fixture
def specs_of(render):
    return lambda text: tuple(render(text).values())


@pytest.fixture
def deployed(specs_of):
    """The state and the running containers of a host right after ``text`` was deployed."""

    def deployed(text=TEMPLATE):
        specs = specs_of(text)
        return state_of(specs), [container_of(s) for s in specs]

    return deployed


def table(actions):
    """The deploy table a user sees: (service, action, why) per step."""
    return [(a.service, a.kind, a.reason) for a in actions]


def test_a_new_instance_creates_every_service_in_template_order(specs_of):
    assert table(plan(specs_of(TEMPLATE), None, [], {})) == [("web", *NEW), ("db", *NEW)]


def test_a_second_deploy_of_an_unchanged_template_keeps_every_service(specs_of, deployed):
    state, containers = deployed()

    assert table(plan(specs_of(TEMPLATE), state, containers, IMAGES)) == [
        ("web", KEEP, "unchanged"),
        ("db", KEEP, "unchanged"),
    ]


def test_after_applying_a_plan_the_next_plan_has_nothing_to_do(specs_of, deployed):
    state, containers = deployed()
    specs = specs_of(TEMPLATE.replace("A: '1'", "A: '2'") + "cache: {image: redis}\n")
    first = plan(specs, state, containers, IMAGES)
    removed = {a.service for a in first if a.kind == REMOVE}

    after = state.applied(specs, removed, IMAGES, template="app.yaml", release=2, deployed_at="", deployed_by="")
    again = plan(specs, after, [container_of(s, IMAGES.get(s.image, "")) for s in specs], IMAGES)

    assert [a.kind for a in first] == [RECREATE, KEEP, CREATE]
    assert [a.kind for a in again] == [KEEP, KEEP, KEEP]


def test_force_recreates_the_services_that_did_not_change(specs_of, deployed):
    state, containers = deployed()

    assert table(plan(specs_of(TEMPLATE), state, containers, IMAGES, force=True)) == [
        ("web", RECREATE, "forced (--force)"),
        ("db", RECREATE, "forced (--force)"),
    ]


CHANGED_TEMPLATE = {
    "an env value": ("web: {image: team/app, cmd: serve, env: {A: '2'}}", "env.A changed"),
    "an added env var": ("web: {image: team/app, cmd: serve, env: {A: '1', B: x}}", "env.B added"),
    "a removed env var": ("web: {image: team/app, cmd: serve}", "env.A removed"),
    "the image": ("web: {image: 'team/app:2', cmd: serve, env: {A: '1'}}", "image team/app -> team/app:2"),
    "the cmd": ("web: {image: team/app, cmd: serve --debug, env: {A: '1'}}", "cmd changed"),
    "a port": ("web: {image: team/app, cmd: serve, env: {A: '1'}, ports: [8080]}", "ports changed"),
    "a label": ("web: {image: team/app, cmd: serve, env: {A: '1'}, labels: {tier: web}}", "labels.tier added"),
    "a volume": ("web: {image: team/app, cmd: serve, env: {A: '1'}, volumes: [/data]}", "volumes changed"),
}


@pytest.mark.parametrize("text, why", CHANGED_TEMPLATE.values(), ids=list(CHANGED_TEMPLATE))
def test_a_changed_service_is_recreated_saying_what_changed_in_template_words(specs_of, deployed, text, why):
    state, containers = deployed("web: {image: team/app, cmd: serve, env: {A: '1'}}")

    assert table(plan(specs_of(text), state, containers, IMAGES)) == [("web", RECREATE, why)]


@pytest.mark.parametrize(
    "option, word", [("memory: 512m", "memory"), ("init: false", "init"), ("restart: always", "restart")]
)
def test_a_changed_docker_run_option_is_named_by_its_template_key(specs_of, deployed, option, word):
    state, containers = deployed("web: {image: team/app}")

    ((_, kind, why),) = table(plan(specs_of(f"web: {{image: team/app, {option}}}"), state, containers, IMAGES))

    assert kind == RECREATE
    assert word in why


def test_a_newer_image_behind_the_same_reference_recreates_the_service(specs_of, deployed):
    state, containers = deployed("web: {image: team/app}")

    assert table(plan(specs_of("web: {image: team/app}"), state, containers, {"team/app": NEW_ID})) == [
        ("web", RECREATE, "image team/app updated (aaaaaaaaaaaa -> bbbbbbbbbbbb)")
    ]


def test_an_image_the_host_cannot_resolve_does_not_recreate_the_service(specs_of, deployed):
    state, containers = deployed("web: {image: team/app}")

    assert table(plan(specs_of("web: {image: team/app}"), state, containers, {})) == [("web", KEEP, "unchanged")]


@pytest.mark.parametrize(
    "docker, why",
    [
        (lambda spec: [], "container missing"),
        (lambda spec: [container_of(spec, status="exited")], "container exited"),
        (lambda spec: [container_of(spec, status="created")], "container created"),
        (lambda spec: [container_of(spec, config_hash="f" * 16)], "container differs from what deployer recorded"),
    ],
    ids=["missing", "exited", "never started", "changed by hand"],
)
def test_a_container_that_is_not_as_deployed_is_recreated(specs_of, docker, why):
    (spec,) = specs_of("web: {image: team/app}")

    assert table(plan((spec,), state_of((spec,)), docker(spec), IMAGES)) == [("web", RECREATE, why)]


REMOVALS = {
    "a service the template dropped": (("old", "web"), ("old", "web"), [("web", KEEP, "unchanged"), ("old", *GONE)]),
    "a container without state": ((), ("stray",), [("web", *NEW), ("stray", *GONE)]),
    "a service in state whose container is gone": (("old",), (), [("web", *NEW), ("old", *GONE)]),
    "several, after the rest": (("z", "m"), ("b", "z"), [("web", *NEW), ("b", *GONE), ("m", *GONE), ("z", *GONE)]),
    "one publishing a host port, first": (("z",), ("b", "p", "z"), [("p", *GONE), ("web", *NEW), ("b", *GONE),
                                                                     ("z", *GONE)]),
}


@pytest.mark.parametrize("in_state, in_docker, expected", REMOVALS.values(), ids=list(REMOVALS))
def test_services_the_host_has_beyond_the_template_are_removed_once_last_or_first_if_they_hold_a_port(
        specs_of, in_state, in_docker, expected):
    """Last, so that a service the template renamed takes the domain of the one it
    replaces before that one stops; first when it publishes a port, which a new service may bind."""
    names = dict.fromkeys(("web", *in_state, *in_docker))
    known = {s.service: s for s in specs_of("".join(f"{name}: {{image: team/app}}\n" for name in names))}
    bound = {"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}}}

    actions = plan(
        (known["web"],),
        state_of([known[name] for name in in_state]),
        [Container.from_inspect({**inspected(known[name]), **(bound if name == "p" else {})}) for name in in_docker],
        IMAGES,
    )

    assert table(actions) == expected
    assert [a.late for a in actions if a.kind == REMOVE] == [a[0] != "p" for a in expected if a[1] == REMOVE]


def test_an_action_carries_the_spec_it_starts_and_a_removal_none(specs_of, deployed):
    state, containers = deployed("old: {image: team/app}\nweb: {image: team/app}")
    specs = specs_of("web: {image: team/app}\ndb: {image: postgres}")

    actions = plan(specs, state, containers, IMAGES)

    assert {a.service: a.spec for a in actions} == {"old": None, "web": specs[0], "db": specs[1]}


def retained_of(spec, name, running=False, created="2024-01-01T00:00:00Z", config_hash=None):
    """A container of the spec's service under another name (retained, or a leftover)."""
    container = container_of(spec, status="running" if running else "exited", config_hash=config_hash)
    return dataclasses.replace(container, name=name, created=created)


LEFTOVERS = {
    "a retained container running": (
        lambda s: [retained_of(s, f"{s.name}.r1", running=True)],
        ("c1.web.r1",), (), (), "stopped leftover c1.web.r1"),
    "the new container of a cut-off start-first step": (
        lambda s: [retained_of(s, f"{s.name}.next", running=True, config_hash="f" * 16)],
        (), ("c1.web.next",), (), "removed leftover c1.web.next"),
    "more retained than retain": (
        lambda s: [retained_of(s, f"{s.name}.r{n}", created=f"2024-01-0{n}T00:00:00Z") for n in (1, 2, 3, 4)],
        (), (), ("c1.web.r1",), "removed retained c1.web.r1 (beyond retain)"),
}


@pytest.mark.parametrize("docker, stop, clear, prune, why", LEFTOVERS.values(), ids=list(LEFTOVERS))
def test_leftovers_beside_an_unchanged_service_are_repaired_saying_so(specs_of, docker, stop, clear, prune, why):
    (spec,) = specs_of("web: {image: team/app}")

    (action,) = plan((spec,), state_of((spec,)), [container_of(spec), *docker(spec)], IMAGES)

    assert (action.kind, action.reason) == (REPAIR, why)
    assert (action.stop, action.clear, action.prune) == (stop, clear, prune)


def test_a_replacement_stops_a_running_retained_container_and_clears_a_next_before_it_runs(specs_of):
    (old,) = specs_of("web: {image: team/app}")
    (new,) = specs_of("web: {image: team/app, cmd: serve}")
    containers = [container_of(old), retained_of(old, "c1.web.r1", running=True),
                  retained_of(new, "c1.web.next", running=True)]

    (action,) = plan((new,), state_of((old,)), containers, IMAGES)

    assert action.kind == RECREATE
    assert action.reason == "cmd changed; stopped leftover c1.web.r1, removed leftover c1.web.next"
    assert (action.stop, action.clear, action.retire, action.reuse) == (("c1.web.r1",), ("c1.web.next",), "c1.web.r1", "")


def test_a_running_retained_container_that_matches_is_reused_not_stopped(specs_of):
    (old,) = specs_of("web: {image: team/app}")
    (new,) = specs_of("web: {image: team/app, cmd: serve}")
    containers = [container_of(old), retained_of(new, "c1.web.r0", running=True)]

    (action,) = plan((new,), state_of((old,)), containers, IMAGES)

    assert (action.reuse, action.stop) == ("c1.web.r0", ())


def test_after_a_repair_the_next_plan_has_nothing_to_do(specs_of):
    (spec,) = specs_of("web: {image: team/app}")
    repaired = [container_of(spec), retained_of(spec, "c1.web.r1")]

    assert table(plan((spec,), state_of((spec,)), repaired, IMAGES)) == [("web", KEEP, "unchanged")]


# -- release commands: which run before their service's step ---------------------------

MIGRATE = {"web": ["migrate"], "db": ["check"]}


def test_a_first_deploy_runs_every_release_command_in_the_plans_order(specs_of):
    actions = plan(specs_of(TEMPLATE), None, [], {})

    assert releasing(actions, MIGRATE, None, {}) == MIGRATE


def test_a_release_runs_only_for_a_service_whose_spec_or_image_changed(specs_of, deployed):
    state, containers = deployed()
    changed = plan(specs_of(TEMPLATE.replace("A: '1'", "A: '2'")), state, containers, IMAGES)
    newer = {**IMAGES, "postgres": NEW_ID}
    pulled = plan(specs_of(TEMPLATE), state, containers, newer)

    assert releasing(changed, MIGRATE, state, IMAGES) == {"web": ["migrate"]}
    assert releasing(pulled, MIGRATE, state, newer) == {"db": ["check"]}
    assert releasing(plan(specs_of(TEMPLATE), state, containers, IMAGES), MIGRATE, state, IMAGES) == {}


def test_a_container_recreated_because_it_exited_runs_no_release_unless_forced(specs_of, deployed):
    state, containers = deployed()
    exited = [container_of(s, status="exited") if s.service == "web" else c
              for s, c in zip(specs_of(TEMPLATE), containers)]
    actions = plan(specs_of(TEMPLATE), state, exited, IMAGES)

    assert [a.kind for a in actions] == [RECREATE, KEEP]
    assert releasing(actions, MIGRATE, state, IMAGES) == {}
    assert releasing(actions, MIGRATE, state, IMAGES, force=True) == {"web": ["migrate"]}
