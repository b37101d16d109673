"""The Swarm engine's pure parts: a spec as ``docker service create``/``update`` arguments
(service.py), the plan as service commands (manager.plan_script), the facts a manager
reports read back as the core's containers (facts.py), releases as configs (releases.py).
Exact argv, as the host's commands are tested."""

import base64
import dataclasses
import json
import shlex
import subprocess

import pytest

from deployer import plugins

from deployer.errors import DeployerError, TemplateError
from deployer.model.plan import Action, plan, CREATE, KEEP, RECREATE, REMOVE
from deployer.model import discovery, spec
from deployer.model.state import Container, InstanceState, ServiceState
from deployer.remote.apply import Limits
from deployer.swarm import releases, service
from deployer.swarm.facts import ServiceFacts, stopped_services
from deployer.ops.converge import Desired
from deployer.remote.session import LocalRunner
from deployer.settings import Settings
from deployer.swarm.manager import Manager, controlled, plan_script
from conftest import parse, values_of

WEB = """\
web:
  image: team/web:2
  cmd: [httpd, -f, -p, "8080"]
  env: {GREETING: hello}
  ports: ["80:8080"]
"""
POLICY = ["--update-order", "stop-first", "--update-failure-action", "rollback", "--update-monitor", "5s",
          "--rollback-order", "stop-first", "--rollback-monitor", "5s"]


def labels(spec, flag, release=None):
    pairs = [("deployer.instance", "c1"), ("deployer.service", spec.service),
             ("deployer.config-hash", spec.config_hash)]
    pairs += [("deployer.release", str(release))] if release else []
    return [arg for key, value in pairs for arg in (flag, f"{key}={value}")]


def test_a_service_is_created_with_its_instance_s_name_labels_network_and_rollback_policy(render):
    web = render(WEB)["web"]

    assert service.create_args(web, 3) == [
        "--detach", "--no-resolve-image", "--with-registry-auth", "--name", "c1_web", "--replicas", "1",
        "--endpoint-mode", "dnsrr",
        *labels(web, "--label", 3), *labels(web, "--container-label"),
        "--env", "GREETING=hello",
        "--publish", "mode=host,target=8080,published=80,protocol=tcp",
        "--network", "name=deployer-c1,alias=web.c1",
        "--restart-condition", "any", "--init", *POLICY,
        "team/web:2", "httpd", "-f", "-p", "8080",
    ]


def test_an_update_changes_only_what_differs_and_labels_the_new_release(render):
    old = render(WEB)["web"]
    new = render(WEB.replace("hello", "hi").replace("team/web:2", "team/web:3") + "  user: app\n")["web"]

    assert service.update_args(old.to_dict(), new, 4) == [
        "--detach", "--no-resolve-image", "--with-registry-auth", "--image", "team/web:3",
        "--label-add", f"deployer.config-hash={new.config_hash}", "--label-add", "deployer.release=4",
        "--container-label-add", f"deployer.config-hash={new.config_hash}",
        "--env-add", "GREETING=hi",
        "--restart-condition", "any", "--init=true", "--user", "app", *POLICY, "c1_web",
    ]


def test_an_update_resets_what_the_template_no_longer_sets_and_moves_changed_ports(render):
    old = render(WEB + "  user: app\n  init: false\n")["web"]
    new = render(WEB.replace('"80:8080"', '"8080"'))["web"]

    args = service.update_args(old.to_dict(), new, 2)

    assert args[args.index("--restart-condition"):-len(POLICY) - 1] == ["--restart-condition", "any", "--init=true",
                                                                        "--user", ""]
    assert args[args.index("--publish-rm"):args.index("--publish-rm") + 4] == [
        "--publish-rm", "8080", "--publish-add", "mode=host,target=8080,protocol=tcp"]


def test_a_wan_endpoint_is_published_on_every_address_of_the_node(render):
    spec = render(WEB.replace('"80:8080"', '"0.0.0.0:80:8080/udp"'))["web"]

    assert "mode=host,target=8080,published=80,protocol=udp" in service.create_args(spec, 1)


def test_an_update_of_the_same_spec_forces_new_tasks(render):
    web = render(WEB)["web"]

    assert "--force" in service.update_args(web.to_dict(), web, 2)


def test_the_command_reaches_docker_as_words_it_splits_back_exactly(render):
    old = render(WEB)["web"]
    new = render(WEB.replace('[httpd, -f, -p, "8080"]', """[sh, -c, "echo '$(id)' \\"; rm -rf /"]"""))["web"]

    args = service.update_args(old.to_dict(), new, 2)

    assert args[args.index("--args") + 1] == """sh -c 'echo '"'"'$(id)'"'"' "; rm -rf /'"""


def test_the_monitor_period_covers_the_healthcheck_s_start_period_and_retries(render):
    checked = render(WEB + "  healthcheck: {cmd: 'true', interval: 2s, retries: 4, start_period: 1m}\n")["web"]

    assert service.monitor(checked) == 60 + 2 * 4 + 1
    assert service.monitor(render(WEB)["web"]) == service.MIN_MONITOR


@pytest.mark.parametrize("extra, said", [
    ('  privileged: true\n', "service web: privileged has no meaning for a swarm service"),
    ('  ports: ["127.0.0.1:80:8080"]\n', "service web: port '127.0.0.1:80:8080' names a host address"),
])
def test_what_a_service_cannot_be_is_an_error_naming_the_service(render, extra, said):
    spec = render(WEB.replace('  ports: ["80:8080"]\n', "") + extra)["web"]

    with pytest.raises(DeployerError) as error:
        service.create_args(spec, 1)

    assert said in str(error.value)


LIMITS = Limits(health_timeout=60, min_uptime=1, history=5)


def test_a_plan_compiles_to_service_commands_each_waiting_for_swarm(render):
    specs = render(WEB + "worker: {image: team/worker}\nnew: {image: team/new}\n")
    old = render(WEB.replace("hello", "hi"))["web"]
    actions = [Action(REMOVE, "gone", "not in the template"), Action(RECREATE, "web", "env changed", specs["web"]),
               Action(KEEP, "worker", "unchanged", specs["worker"]), Action(CREATE, "new", "new", specs["new"])]
    recorded = {"web": ServiceState.of(old, "")}

    lines = plan_script("c1", actions, recorded, LIMITS, 2, networks=("deployer-c1",))

    assert [line.split()[0] for line in lines] == ["I=c1;", "dpl_swarm_network", "dpl_swarm_down", "dpl_swarm_update",
                                                   "pids=", "dpl_swarm_probe", "dpl_swarm_create", "failed=0;"]
    assert lines[1] == "dpl_swarm_network deployer-c1 --label deployer.instance=c1 deployer-c1 || exit 1"
    assert lines[2] == "dpl_swarm_down gone c1_gone || exit 1"
    assert lines[3].startswith("dpl_swarm_update web c1_web 70 --detach") and lines[3].endswith(" c1_web || exit 1")
    # a new service's image used by name: a warning only, asked while the new services start
    assert lines[5] == 'dpl_swarm_probe 60 team/new & pids="$pids $!"'
    assert lines[6].startswith("dpl_swarm_create new c1_new 70 5 --detach") and lines[6].endswith(' & pids="$pids $!"')
    assert lines[7] == 'failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1'


def test_new_services_start_at_once_in_waves_each_after_those_it_exposes_as_on_one_host(render):
    specs = render("db: {image: pg}\ncache: {image: redis}\napp: {image: app}\nworker: {image: app}\n")
    actions = [Action(CREATE, name, "new", spec) for name, spec in specs.items()]
    limits = Limits(health_timeout=60, min_uptime=1, history=5, parallel_starts=2)

    lines = plan_script("c1", actions, {}, limits, 1, deps={"app": {"db", "cache"}, "worker": {"app"}})

    started = [line.split()[1] if line.startswith("dpl_swarm_create") else line.split()[0] for line in lines[1:]]
    assert started == ["pids=", "dpl_swarm_probe", "db", "cache", "failed=0;", "pids=", "app", "failed=0;",
                       "pids=", "worker", "failed=0;"]  # the probe beside the first batch, in none of its places


def test_a_service_the_state_does_not_know_is_made_anew_from_its_image_pinned_by_digest(render):
    web = render(WEB)["web"]
    pinned = "team/web:2@sha256:" + "a" * 64

    lines = plan_script("c1", [Action(RECREATE, "web", "container differs", web)], {}, LIMITS, 2,
                        images={"team/web:2": pinned})

    assert [line.split()[0] for line in lines[1:]] == ["dpl_swarm_down", "dpl_swarm_create"]  # pinned: no probe
    assert f" {pinned} httpd -f -p 8080 || exit 1" in lines[2]


def test_an_update_runs_the_image_pinned_by_digest_and_probes_an_image_used_by_name_only_when_it_changes(render):
    old, new = render(WEB)["web"], render(WEB.replace("hello", "hi"))["web"]
    recorded = {"web": ServiceState.of(old, "")}
    pinned = "team/web:2@sha256:" + "b" * 64

    by_name = plan_script("c1", [Action(RECREATE, "web", "env", new)], recorded, LIMITS, 2)
    by_digest = plan_script("c1", [Action(RECREATE, "web", "env", new)], recorded, LIMITS, 2,
                            images={"team/web:2": pinned})

    assert [line.split()[0] for line in by_name[1:]] == ["dpl_swarm_update"]  # the same image: no probe
    assert "--image team/web:2 " in by_name[1] and f"--image {pinned} " in by_digest[1]
    moved = plan_script("c1", [Action(RECREATE, "web", "image", render(WEB.replace("web:2", "web:3"))["web"])],
                        recorded, LIMITS, 2)
    assert moved[1:] == ["dpl_swarm_probe 60 team/web:3", moved[2]]  # no new service to start beside: before it


def test_placement_becomes_constraints_and_a_spread_preference_and_an_update_moves_only_what_changed(render):
    placed = WEB + ("  placement: {constraints: ['node.labels.tier == web', 'node.role!=manager'], "
                    "spread: node.labels.zone}\n")
    old = render(placed)["web"]
    new = render(placed.replace("node.role!=manager", "node.hostname == n2").replace(", spread: node.labels.zone", ""))
    new = new["web"]

    created = service.create_args(old, 1)
    updated = service.update_args(old.to_dict(), new, 2)

    assert created[created.index("--constraint"):created.index("--update-order")] == [
        "--constraint", "node.labels.tier == web", "--constraint", "node.role!=manager",
        "--placement-pref", "spread=node.labels.zone"]
    assert updated[updated.index("--constraint-rm"):updated.index("--network-rm") if "--network-rm" in updated
                   else updated.index("--restart-condition")] == [
        "--constraint-rm", "node.role!=manager", "--constraint-add", "node.hostname == n2",
        "--placement-pref-rm", "spread=node.labels.zone"]


def test_a_pinned_service_s_volumes_are_named_volumes_of_its_node_labelled_with_the_instance(render):
    text = WEB + "  volumes: ['/data', '/a,b:ro']\n  placement: {constraints: ['node.hostname == db1']}\n"
    spec = render(text)["web"]

    args = service.create_args(spec, 1)

    assert [v for flag, v in zip(args, args[1:]) if flag == "--mount"] == [
        "type=volume,source=c1_web_data,target=/data,volume-label=deployer.instance=c1",
        'type=volume,source=c1_web_a_2cb,"target=/a,b",volume-label=deployer.instance=c1,readonly']
    assert args[args.index("--update-order") + 1] == "stop-first"  # two tasks never share a volume


@pytest.mark.parametrize("text, key, said", [
    ("db: {image: pg, volumes: [/data]}\n", "db.volumes", "volumes need the same directory on every node"),
    ("db: {image: pg, volumes: [/data], placement: {constraints: ['node.role == manager']}}\n", "db.volumes",
     "pin it with placement: {constraints: ['node.hostname == NODE']}"),
    ("db: {image: pg, volumes: [/data], placement: {constraints: ['node.hostname != a']}}\n", "db.volumes", "pin it"),
    ("app: {git: ., cmd: web}\n", "app.git", "an image built from git would be on the manager alone: set "
     "deployer.registry to a registry every node pulls from (such as registry.example:5000/team)"),
])
def test_what_a_swarm_cannot_run_is_refused_naming_file_and_key_before_anything_changes(parse, text, key, said):
    with pytest.raises(TemplateError) as error:
        service.refused(parse(text))

    assert error.value.exit_code == 2 and error.value.key == key and said in error.value.message
    assert str(error.value).startswith(f"app.yaml: {key}: ")


def test_a_git_service_is_run_once_a_registry_is_set_to_push_its_image_to(parse):
    service.refused(parse("app: {git: ., cmd: web}\n"), "registry.example:5000/team")


def test_volumes_pinned_by_hostname_id_or_a_node_label_are_run(parse):
    for pin in ("node.hostname == db1", "node.id==abc", "node.labels.disk == ssd"):
        service.refused(parse(f"db: {{image: pg, volumes: [/data], placement: {{constraints: ['{pin}']}}}}\n"))


def test_volumes_of_a_volume_driver_need_no_pin_and_are_named_volumes_of_that_driver(parse, render):
    text = "db: {image: pg, volumes: [/data], volume_driver: local, volume_opts: {type: tmpfs, device: tmpfs}}\n"
    service.refused(parse(text))

    args = service.create_args(render(text)["db"], 1)

    assert args[args.index("--mount") + 1] == ("type=volume,source=c1_db_data,target=/data,volume-label="
                                               "deployer.instance=c1,volume-driver=local,volume-opt=device=tmpfs,"
                                               "volume-opt=type=tmpfs")


def inspected(name, service, config_hash, replicas, update=None):
    return {"Spec": {"Name": name, "Labels": {"deployer.service": service, "deployer.config-hash": config_hash,
                                              "deployer.release": "2"},
                     "Mode": {"Replicated": {"Replicas": replicas}},
                     "TaskTemplate": {"ContainerSpec": {"Image": "team/web:2"}},
                     "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 80}]}},
            "CreatedAt": "2026-12-02T04:00:00Z", **({"UpdateStatus": {"State": update}} if update else {})}


def test_each_service_is_one_container_to_the_core_saying_where_its_tasks_run():
    out = {"roots": "/s\n/v\n", "networks": "ingress\ndeployer-c1\nbridge\n",
           "services": json.dumps([inspected("c1_web", "web", "abc", 1),
                                   inspected("c1_db", "db", "def", 1, "updating")]),
           "tasks": "c1_web.1 node-b Running 3 minutes ago\nc1_db.1 node-a Preparing 2 seconds ago\n"}

    facts = ServiceFacts("c1", ("deployer-c1", "deployer-c1.db")).read(out, "mgr")

    web, db = facts.containers
    assert (web.name, web.running, web.status, web.config_hash, web.release, web.ports) == (
        "c1.web", True, "1/1 running on node-b", "abc", 2, ("*:80->8080/tcp",))
    assert (db.name, db.running, db.status) == ("c1.db", False, "0/1 running, update updating")
    assert facts.networks == {"deployer-c1"} and facts.state is None and facts.images == {}


REPLICATED = "web: {image: team/web:2, cmd: [httpd], replicas: 3}\n"


def replicated_facts(specs, tasks, runs=None):
    """The facts of c1_web running the service of ``runs`` (else of ``specs``, the state's) as ``tasks``."""
    state = InstanceState("c1", "app.yaml", 2, "", "", services={u: ServiceState.of(s, "") for u, s in specs.items()})
    stated = json.dumps({"state": json.loads(state.to_json()), "entry": {}})
    running = inspected("c1_web", "web", service.whole((runs or specs)["web.1"]).config_hash, 3)
    out = {"roots": "/s\n/v\n", "networks": "", "services": json.dumps([running]), "tasks": tasks, "stated": stated}
    return ServiceFacts("c1").read(out, "mgr")


def test_a_replicated_service_is_its_replicas_to_the_core_its_tasks_in_slot_order_and_the_plan_keeps_them(render):
    specs = render(REPLICATED)
    tasks = "c1_web.4 node-a Running 1 minute ago\nc1_web.1 node-b Running 3 minutes ago\nc1_web.2  Pending now\n"

    facts = replicated_facts(specs, tasks)

    assert [(c.name, c.unit, c.running, c.status) for c in facts.containers] == [
        ("c1.web.1", "web.1", True, "running on node-b"), ("c1.web.2", "web.2", False, "pending"),
        ("c1.web.3", "web.3", True, "running on node-a")]  # slot 4 is the third task (Swarm's slots have gaps)
    assert [c.config_hash for c in facts.containers] == [s.config_hash for s in specs.values()]
    kinds = [(a.kind, a.service) for a in plan(list(specs.values()), facts.state, facts.containers, {})]
    assert kinds == [(KEEP, "web.1"), (RECREATE, "web.2"), (KEEP, "web.3")]


def test_a_replicated_service_running_another_spec_than_the_state_s_differs_from_it(render):
    specs, changed = render(REPLICATED), render(REPLICATED.replace("httpd", "sh"))  # (by hand, say)

    facts = replicated_facts(specs, "c1_web.1 a Running now\nc1_web.2 a Running now\nc1_web.3 b Running now\n", changed)

    assert {c.config_hash for c in facts.containers} == {service.whole(changed["web.1"]).config_hash}
    reasons = {a.reason for a in plan(list(specs.values()), facts.state, facts.containers, {})}
    assert reasons == {"container differs from what deployer recorded"}


def test_a_replica_s_spec_is_its_service_s_whatever_its_number_and_hashes_as_one_replica_does(render):
    one, three = render(REPLICATED.replace(", replicas: 3", ""))["web"], render(REPLICATED)

    assert {service.whole(s) for s in three.values()} == {one}
    assert [service.replica(one, n) for n in (1, 2, 3)] == list(three.values())
    assert service.create_args(three["web.2"], 1, replicas=3, batch=2) == [
        "--detach", "--no-resolve-image", "--with-registry-auth", "--name", "c1_web", "--replicas", "3",
        "--endpoint-mode", "dnsrr",
        *labels(one, "--label", 1), *labels(one, "--container-label"), "--network", "name=deployer-c1,alias=web.c1",
        "--restart-condition", "any", "--init", "--update-order", "start-first", "--update-failure-action", "rollback",
        "--update-monitor", "5s", "--update-parallelism", "2", "--rollback-parallelism", "2",
        "--rollback-order", "start-first", "--rollback-monitor", "5s", "team/web:2", "httpd"]


def test_an_update_of_a_replicated_service_sets_its_count_only_when_scaled_and_rolls_as_the_setting_says(render):
    old, new = render(REPLICATED)["web.1"], render(REPLICATED.replace("httpd", "sh"))["web.3"]

    scaled = service.update_args(old.to_dict(), new, 3, replicas=5, batch=0, scaled=True)
    same = service.update_args(old.to_dict(), new, 3, replicas=3, batch=2)
    one = service.update_args(old.to_dict(), new, 3)

    assert scaled[scaled.index("--init=true") + 1:scaled.index("--update-order")] == ["--replicas", "5"]
    assert scaled[scaled.index("--args"):][:2] == ["--args", "sh"]
    assert scaled[scaled.index("--update-parallelism"):][:4] == ["--update-parallelism", "0", "--rollback-parallelism", "0"]
    assert "--replicas" not in same and "--force" not in same  # (the batch as the setting says now)
    assert same[same.index("--update-parallelism"):][:4] == ["--update-parallelism", "2", "--rollback-parallelism", "2"]
    assert "--update-parallelism" not in one  # one task: Swarm's default, as before replicas


def test_an_image_the_manager_holds_with_a_registry_digest_is_pinned_by_it_and_others_are_used_by_name():
    digest = "sha256:" + "c" * 64
    images = ('["team/web:2","team/web:latest"] ["docker.io/team/web@' + digest + '"]\n'
              '["local/busybox:latest"] []\n')
    refs = ("team/web:2", "docker.io/team/web", "local/busybox", "absent/one", f"other/x@{digest}")
    out = {"roots": "/s\n/v\n", "networks": "", "services": "[]", "images": images}

    facts = ServiceFacts("c1", images=refs).read(out, "mgr")

    assert facts.images == {"team/web:2": f"team/web:2@{digest}", "docker.io/team/web": f"team/web:latest@{digest}",
                            f"other/x@{digest}": f"other/x@{digest}"}


def test_a_tag_that_moved_to_another_digest_updates_the_service(render):
    spec = render(WEB)["web"]
    old, new = "team/web:2@sha256:" + "1" * 64, "team/web:2@sha256:" + "2" * 64
    running = inspected("c1_web", "web", spec.config_hash, 1)
    running["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] = old
    out = {"roots": "/s\n/v\n", "networks": "", "services": json.dumps([running]), "tasks": "c1_web.1 a Running now\n"}

    containers = ServiceFacts("c1").read(out, "mgr").containers

    assert plan([spec], None, containers, {"team/web:2": old}) == (Action(KEEP, "web", "unchanged", spec),)
    (moved,) = plan([spec], None, containers, {"team/web:2": new})
    assert (moved.kind, moved.reason) == (RECREATE, "image team/web:2 updated (111111111111 -> 222222222222)")


def test_docker_output_that_is_not_json_is_an_error_naming_the_manager():
    out = {"roots": "/s\n/v\n", "networks": "", "services": "Error: no"}

    with pytest.raises(DeployerError) as error:
        ServiceFacts("c1").read(out, "root@mgr:22")

    assert "root@mgr:22" in str(error.value) and "docker service inspect" in str(error.value)


def test_a_release_config_holds_the_entry_and_the_state_and_reads_back_in_order():
    state = InstanceState("c1", "shop.yaml", 2, "2026-12-02T04:00:00Z", "ops@laptop", variables={"v": "it's"})
    line = releases.record(state, {"release": 2, "template_text": "web: {}"}, history=5)
    data = json.loads(shlex.split(line)[3])
    configs = [{"Spec": {"Labels": {"deployer.at": str(at), "deployer.instance": "c1"},
                         "Data": base64.b64encode(json.dumps(d).encode()).decode()}}
               for at, d in ((20, data), (10, {"state": None, "entry": {"release": 0}}))]

    assert line.startswith("dpl_swarm_record 1 5 ") and line.endswith(" || exit 1")
    (_, _, attempt), (_, _, kept) = releases.releases(json.dumps(configs), "mgr")
    assert releases.state(kept, "mgr") == state and releases.entry(kept, "mgr")["template_text"] == "web: {}"
    assert releases.state(attempt, "mgr") is None


def test_a_config_that_is_not_a_release_is_an_error_naming_it():
    with pytest.raises(DeployerError) as error:
        releases.entry('{"other": 1}', "mgr: the release config of c1")

    assert "corrupt release config" in str(error.value) and "the release config of c1" in str(error.value)


def test_a_hostile_constraint_reaches_docker_as_one_word_exactly(render):
    hostile = """node.labels.x == $(touch /tmp/pwned)'"; `id` \\ done"""
    spec = render(WEB + f"  placement: {{constraints: [{json.dumps(hostile)}]}}\n")["web"]

    (line,) = plan_script("c1", [Action(CREATE, "web", "new", spec)], {}, LIMITS, 1,
                          images={"team/web:2": "team/web:2@sha256:" + "d" * 64})[2:3]

    words = shlex.split(line.removesuffix(' & pids="$pids $!"'))
    assert words[words.index("--constraint") + 1] == hostile


def replicated_plan(before, after, runs=None):
    """The swarm plan taking ``before`` (template text, recorded and running) to ``after``."""
    old, new = render_specs(before), render_specs(after)
    recorded = {u: ServiceState.of(s, "") for u, s in old.items()}
    state = InstanceState("c1", "app.yaml", 1, "", "", services=recorded)
    containers = [dataclasses.replace(CONTAINER, name=s.name, service=s.service, replica=s.replica,
                                      config_hash=s.config_hash) for s in (runs or old).values()]
    actions = plan(list(new.values()), state, containers, {})
    return plan_script("c1", actions, recorded, Limits(60, 1, 5, batch=2), 2, images={"team/web:2": "team/web:2"})


def render_specs(text):
    from conftest import render
    return render(text)


CONTAINER = Container("", "", True, "running", "team/web:2", "team/web:2", "", "", 1, ())


@pytest.mark.parametrize("count", [5, 2, 1])
def test_a_change_of_count_alone_scales_the_service_and_restarts_no_task(count):
    after = REPLICATED.replace("replicas: 3", f"replicas: {count}")

    (line,) = replicated_plan(REPLICATED, after)[1:]

    limit = -(-count // 2) * (60 + 2 * 5)  # a batch of two tasks at a time: each may start, fail and roll back
    assert line == f"dpl_swarm_scale web c1_web {limit} 3 {count} || exit 1"


def test_one_container_becoming_replicas_is_the_same_service_scaled():
    (line,) = replicated_plan(REPLICATED.replace(", replicas: 3", ""), REPLICATED)[1:]

    assert line == "dpl_swarm_scale web c1_web 140 1 3 || exit 1"  # (no restart of the one task there was)


def test_a_changed_replicated_service_is_one_update_rolled_two_at_a_time_with_its_new_count():
    (line,) = replicated_plan(REPLICATED, REPLICATED.replace("httpd", "sh").replace("3}", "4}"))[1:]

    words = shlex.split(line)
    assert words[:4] == ["dpl_swarm_update", "web", "c1_web", "140"] and words[-4:] == ["c1_web", "||", "exit", "1"]
    assert words[words.index("--replicas") + 1] == "4" and words[words.index("--update-parallelism") + 1] == "2"
    assert words[words.index("--args") + 1] == "sh" and "--force" not in words


def test_a_replica_not_running_updates_the_service_anew_and_its_count_stays():
    specs = render_specs(REPLICATED)
    runs = {u: s for u, s in specs.items() if u != "web.2"}

    (line,) = replicated_plan(REPLICATED, REPLICATED, runs)[1:]

    words = shlex.split(line)
    assert words[0] == "dpl_swarm_update" and "--force" in words and "--replicas" not in words


def test_a_new_replicated_service_is_created_once_with_its_count_and_one_gone_removed_once(render):
    specs = render(REPLICATED + "gone: {image: team/gone}\n")
    actions = [Action(REMOVE, "gone.1", "not in the template"), Action(REMOVE, "gone.2", "not in the template"),
               *(Action(CREATE, unit, "new", spec) for unit, spec in specs.items() if unit.startswith("web"))]

    lines = plan_script("c1", actions, {}, LIMITS, 1, images={"team/web:2": "team/web:2"})

    assert [line.split()[:2] for line in lines[1:]] == [["dpl_swarm_down", "gone"], ["pids="], ["dpl_swarm_create", "web"],
                                                        ["failed=0;", "for"]]
    assert "--replicas 3 " in lines[3]


def test_replicas_whose_volumes_are_not_shared_are_refused_on_a_swarm(parse, render):
    text = "db: {image: pg, replicas: 2, volumes: [/data], placement: {constraints: ['node.hostname == a']}}\n"
    with pytest.raises(TemplateError) as error:
        service.refused(parse(text))
    assert error.value.key == "db.volumes" and "mark them shared (/data:shared), or run one replica" in error.value.message
    service.refused(parse(text.replace("/data", "/data:shared")))

    actions = [Action(CREATE, unit, "new", spec) for unit, spec in render(text).items()]  # as `scale` makes them
    with pytest.raises(DeployerError) as error:
        plan_script("c1", actions, {}, LIMITS, 1)
    assert "service db: its replicas would differ (volumes not shared)" in error.value.message


def test_a_replicated_service_is_exposed_on_a_swarm_by_its_service_s_name_which_resolves_to_its_tasks(parse):
    template = parse("web: {image: team/web, replicas: 2, register: {80: http}}\n")

    on_a_host = discovery.allocate(template, {}, set(), "", "c1")["web:http"]
    on_a_swarm = discovery.allocate(template, {}, set(), "", "c1", named=Manager.names_replicas)["web:http"]

    assert on_a_host.addresses == [("web.1.c1", 80), ("web.2.c1", 80)]
    assert on_a_swarm.addresses == [("web.c1", 80)]


# -- secrets: Swarm secrets named by a hash of their value, read into env vars by an entrypoint

SECRET = """\
web:
  image: team/web:2
  env: {GREETING: hello, TOKEN: {secret: TOKEN}, KEY: {secret: KEY}}
"""
HOSTILE_SECRET = """it's "$(touch /tmp/pwned)"; `id` \\ done\n  spaced \n\n"""
BUSYBOX = ((), ("httpd", "-f", "-p", "8080"))  # the image's own entrypoint and cmd (facts.commands)


def with_secrets(text, **values):
    """The specs of a template's text given these secrets' values."""
    return {s.unit: s for s in spec.render(parse(text), "c1", "/v", plugins.installed(), values)}


def test_secrets_are_swarm_secrets_named_by_a_hash_of_their_value_and_never_in_the_service_s_arguments():
    web = with_secrets(SECRET, TOKEN=HOSTILE_SECRET, KEY="k3y")["web"]

    args = service.create_args(web, 1, command=BUSYBOX)

    names = service.secrets(web)
    assert sorted(names.values()) == ["KEY", "TOKEN"]
    assert all(len(name) == len(f"c1_{key}_") + 12 and name.startswith(f"c1_{key}_") for name, key in names.items())
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--secret"] == [
        f"source={name},target={key}" for name, key in names.items()]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--env"] == ["GREETING=hello"]
    assert not any(HOSTILE_SECRET in arg or "k3y" in arg for arg in args)
    assert args[-5:] == ["team/web:2", "httpd", "-f", "-p", "8080"]  # the image's cmd, behind the entrypoint
    assert shlex.split(args[args.index("--entrypoint") + 1])[:2] == ["/bin/sh", "-c"]


def test_a_changed_value_is_another_secret_and_the_same_value_the_same_one():
    one, same, other = (with_secrets(SECRET, TOKEN=token, KEY="k")["web"] for token in ("a", "a", "b"))

    assert service.secrets(one) == service.secrets(same)
    assert set(service.secrets(one)) - set(service.secrets(other)) != set()
    assert one.config_hash != other.config_hash  # a new spec: the service updates
    assert service.secret_values(other) == {name: {"TOKEN": "b", "KEY": "k"}[key]
                                             for name, key in service.secrets(other).items()}


def test_a_long_instance_and_var_name_make_a_secret_name_swarm_accepts_still_unique_by_its_hash():
    text = "web: {image: x, env: {%s: {secret: A}, %sB: {secret: A}}}\n" % ("V" * 60, "V" * 60)
    specs = spec.render(parse(text), "i" * 63, "/v", plugins.installed(), {"A": "a"})

    names = service.secrets(specs[0])

    assert len(names) == 2 and all(len(name) == 64 for name in names)


@pytest.mark.parametrize("value", [HOSTILE_SECRET, "plain", "", "\n", "x\ny", "$HOME 'q' \"d\""])
def test_the_entrypoint_exports_each_secret_s_file_exactly_then_runs_the_container_s_own_command(
        tmp_path, monkeypatch, value):
    monkeypatch.setattr(service, "SECRET_FILES", str(tmp_path))
    web = with_secrets(SECRET, TOKEN=value, KEY="k")["web"]
    for name, key in service.secrets(web).items():
        (tmp_path / key).write_text(service.secret_values(web)[name])
    args = service.create_args(web, 1, command=((), ("python3", "-c", "import os, sys; sys.stdout.write(repr("
                                                     "[os.environ['TOKEN'], os.environ['KEY'], sys.argv[1:]]))", "a b")))

    entrypoint = shlex.split(args[args.index("--entrypoint") + 1])
    ran = subprocess.run([*entrypoint, *args[args.index("team/web:2") + 1:]], capture_output=True, text=True,
                         check=True)

    assert ran.stdout == repr([value, "k", ["a b"]])


def test_an_entrypoint_or_cmd_of_the_template_is_what_runs_behind_the_secrets_entrypoint():
    own = with_secrets(SECRET + "  entrypoint: [tini, --]\n  cmd: [web, --port, '80']\n", TOKEN="t", KEY="k")["web"]
    cmd = with_secrets(SECRET + "  cmd: [web]\n", TOKEN="t", KEY="k")["web"]

    assert service.create_args(own, 1)[-6:] == ["team/web:2", "tini", "--", "web", "--port", "80"]  # no facts needed
    assert service.create_args(cmd, 1, command=(("entry",), ("default",)))[-3:] == ["team/web:2", "entry", "web"]


def test_a_service_with_secrets_whose_image_the_manager_lacks_and_no_entrypoint_is_an_error_naming_it():
    web = with_secrets(SECRET, TOKEN="t", KEY="k")["web"]

    with pytest.raises(DeployerError) as error:
        service.create_args(web, 1, command=None)

    assert "service web:" in str(error.value) and "no image team/web:2" in str(error.value)
    assert "--pull" in str(error.value) and "entrypoint:" in str(error.value)


def test_an_update_swaps_a_changed_secret_and_keeps_values_out_of_its_arguments():
    old = with_secrets(SECRET, TOKEN="old-value", KEY="k")["web"]
    new = with_secrets(SECRET, TOKEN="new-value", KEY="k")["web"]
    (gone,), (kept,) = (set(service.secrets(old)) - set(service.secrets(new)),
                        set(service.secrets(old)) & set(service.secrets(new)))
    (added,) = set(service.secrets(new)) - set(service.secrets(old))

    args = service.update_args(old.to_dict(), new, 2, command=BUSYBOX)

    assert args[args.index("--secret-rm"):args.index("--secret-rm") + 4] == [
        "--secret-rm", gone, "--secret-add", f"source={added},target=TOKEN"]
    assert kept not in " ".join(args) and "--env-add" not in args
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--env-rm"] == ["KEY", "TOKEN"]  # (as env: before)
    assert not any("old-value" in arg or "new-value" in arg for arg in args)
    assert args[args.index("--args") + 1] == "httpd -f -p 8080"


def test_secrets_dropped_from_a_template_are_removed_and_the_image_s_own_command_comes_back(render):
    old = with_secrets(SECRET, TOKEN="t", KEY="k")["web"]
    new = render(WEB)["web"]

    args = service.update_args(old.to_dict(), new, 2)

    assert args.count("--secret-rm") == 2 and "--secret-add" not in args
    plain = service.update_args(old.to_dict(), with_secrets(SECRET.replace("{secret: KEY}", "kk"), TOKEN="t")["web"], 2,
                                command=BUSYBOX)
    assert [plain[i + 1] for i, arg in enumerate(plain) if arg == "--env-rm"] == ["TOKEN"]  # KEY is plain now:
    assert "KEY=kk" in plain  # added, not removed after
    assert args[args.index("--args") + 1] == "httpd -f -p 8080" and args[args.index("--entrypoint") + 1] == ""


def test_a_plan_creates_the_missing_secrets_first_from_the_values_given_and_removes_unused_ones_last():
    old = service.sealed(with_secrets(SECRET, TOKEN="old", KEY="k")["web"])
    new = service.sealed(with_secrets(SECRET, TOKEN=HOSTILE_SECRET, KEY="k")["web"])
    names = {key: name for name, key in service.secrets(new).items()}

    lines = plan_script("c1", [Action(RECREATE, "web", "env", new)], {"web": ServiceState.of(old, "")}, LIMITS, 2,
                        images={"team/web:2": "team/web:2@sha256:" + "e" * 64}, commands={"team/web:2": BUSYBOX},
                        values={service.seal("c1", HOSTILE_SECRET): HOSTILE_SECRET})  # KEY's not given

    made = [shlex.split(line.removesuffix(" || exit 1")) for line in lines if line.startswith("dpl_swarm_secret ")]
    assert lines[1] == f"dpl_swarm_shell web team/web:2@sha256:{'e' * 64} || exit 1"  # first: its image has a shell
    assert sorted(made) == sorted([["dpl_swarm_secret", names["TOKEN"], HOSTILE_SECRET],
                                   ["dpl_swarm_secret", names["KEY"]]])  # KEY's secret must be there still
    assert lines[-2].startswith("dpl_swarm_update web ") and lines[-1] == "dpl_swarm_unused 3"


def test_a_swarm_s_specs_and_state_hold_secrets_sealed_which_change_with_the_value_and_keep_the_values_for_the_plan():
    manager = Manager(LocalRunner(), Settings())
    specs = tuple(with_secrets(SECRET, TOKEN=HOSTILE_SECRET, KEY="k").values())
    want = Desired(specs, {}, SECRET, "app.yaml", {}, {"TOKEN": HOSTILE_SECRET, "KEY": "k"})

    got = manager.sealed("c1", want)
    again = manager.sealed("c1", got)  # a redeploy from the state's seals
    changed = manager.sealed("c1", Desired(tuple(with_secrets(SECRET, TOKEN="new", KEY="k").values()), {}, SECRET,
                                           "app.yaml", {}, {"TOKEN": "new", "KEY": "k"}))

    recorded = json.dumps([s.to_dict() for s in got.specs]) + json.dumps(got.secrets)
    assert HOSTILE_SECRET.strip() not in recorded and '"k"' not in recorded
    assert dict(got.specs[0].env)["GREETING"] == "hello"  # not a secret: as it is
    assert again == got and again.specs[0].config_hash == got.specs[0].config_hash
    assert changed.specs[0].config_hash != got.specs[0].config_hash
    assert manager.values[got.secrets["TOKEN"]] == HOSTILE_SECRET and manager.values[changed.secrets["TOKEN"]] == "new"


def test_a_plan_without_secrets_neither_creates_nor_removes_any(render):
    lines = plan_script("c1", [Action(CREATE, "web", "new", render(WEB)["web"])], {}, LIMITS, 1)

    assert not any(line.startswith(("dpl_swarm_secret", "dpl_swarm_unused", "dpl_swarm_shell")) for line in lines)


def test_a_removed_service_that_had_secrets_leaves_its_secrets_to_be_removed():
    old = with_secrets(SECRET, TOKEN="t", KEY="k")["web"]
    recorded = {"web": ServiceState.of(old, "")}

    lines = plan_script("c1", [Action(REMOVE, "web", "gone", None)], recorded, LIMITS, 2)

    assert lines[-2].startswith("dpl_swarm_down web c1_web") and lines[-1] == "dpl_swarm_unused 3"


def test_the_facts_give_each_image_s_own_entrypoint_and_cmd_whose_words_may_hold_blanks():
    digest = "sha256:" + "f" * 64
    images = (f'["team/web:2"] ["team/web@{digest}"] ["/entry.sh"] ["run","a b"]\n'
              '["local/busybox:latest"] [] null ["sh"]\n')
    out = {"roots": "/s\n/v\n", "networks": "", "services": "[]", "images": images}

    facts = ServiceFacts("c1", images=("team/web:2", f"team/web@{digest}", "local/busybox", "absent")).read(out, "m")

    assert facts.commands == {"team/web:2": (("/entry.sh",), ("run", "a b")),
                              f"team/web@{digest}": (("/entry.sh",), ("run", "a b")),
                              "local/busybox": ((), ("sh",))}
    assert facts.images["team/web:2"] == f"team/web:2@{digest}"


def test_logs_of_a_swarm_are_its_services_logs_each_service_once_from_every_node(render):
    specs = render("web: {image: team/web, replicas: 2}\napp: {image: team/app}\n")

    argv = service.logs_command("c1", specs.values(), True, 5)

    assert argv[:2] == ["sh", "-c"] and argv[2] == (
        "docker service logs --follow --tail 5 --no-task-ids c1_web 2>&1 & "
        "docker service logs --follow --tail 5 --no-task-ids c1_app 2>&1 & wait")


# -- discovery across instances: another instance's endpoint, through its service's network

CONSUMER = "app: {image: team/app, expose: {'shop/db:sql': DB}}\n"


def release_config(state, at):
    """A release config as ``docker config inspect`` gives it (releases.py), holding ``state``."""
    data = json.dumps({"state": json.loads(state.to_json()), "entry": {}})
    return {"Spec": {"Labels": {"deployer.instance": state.instance, "deployer.at": str(at)},
                     "Data": base64.b64encode(data.encode()).decode()}}


def facts_with_others(*states, networks=""):
    """The facts of c1, its discovery asked for, on a swarm holding the other instances' ``states``."""
    out = {"roots": "/s\n/v\n", "networks": networks, "services": "[]",
           "others": json.dumps([release_config(s, n) for n, s in enumerate(states, 1)])}
    asked = ("deployer-c1", "deployer-shop.db")
    return ServiceFacts("c1", asked, discovery=True).read(out, "mgr")


SHOP = InstanceState("shop", "db.yaml", 3, "", "", endpoints={"db:sql": {"address": "", "host_port": 0, "port": 5432,
                                                                         "wan": False}})


def test_the_facts_give_the_other_instances_states_and_the_networks_as_the_swarm_names_them():
    facts = facts_with_others(SHOP, networks="deployer-c1\ndeployer_shop_db\ndeployer-shop\n")

    assert [s.instance for s in facts.others] == ["shop"] and facts.others[0].endpoints == SHOP.endpoints
    assert facts.networks == {"deployer-c1", "deployer-shop.db"}
    assert "dpl_swarm_others" in ServiceFacts("c1", discovery=True).script()
    assert "dpl_swarm_others" not in ServiceFacts("c1").script()  # read only when a deploy uses discovery


def test_a_consumer_of_another_instance_s_endpoint_joins_that_service_s_network_alone_and_gets_its_name(parse):
    template = parse(CONSUMER)
    endpoints, others, _ = discovery.resolve(template, "c1", facts_with_others(SHOP), named=Manager.names_replicas)

    (app,) = spec.render(template, "c1", "/v", plugins.installed(), {}, {**others, **endpoints})
    args = service.create_args(app, 1)

    assert dict(app.env)["DB"] == "db.shop:5432"
    assert values_of(args, "--network") == ["name=deployer-c1,alias=app.c1", "name=deployer_shop_db"]


def test_a_missing_provider_is_an_error_naming_the_endpoint_before_anything_changes(parse):
    with pytest.raises(TemplateError) as error:
        discovery.resolve(parse(CONSUMER), "c1", facts_with_others(), named=False)

    assert str(error.value) == "app.yaml: app.expose: 'shop/db:sql' names no registered endpoint (known: none)"


def on_a_swarm(text):
    """The specs of a template's text, its endpoints allocated as a swarm allocates them, by unit."""
    template = parse(text)
    endpoints = discovery.allocate(template, {}, set(), "", "c1", named=Manager.names_replicas)
    return {s.unit: s for s in spec.render(template, "c1", "/v", plugins.installed(), {}, endpoints)}


def test_a_registering_service_joins_its_own_service_network_which_its_deploy_creates():
    db = on_a_swarm("db: {image: pg, register: {5432: sql}}\n")["db"]

    assert values_of(service.create_args(db, 1), "--network") == ["name=deployer-c1,alias=db.c1",
                                                                   "name=deployer_c1_db,alias=db.c1"]
    lines = plan_script("c1", [Action(CREATE, "db", "new", db)], {}, LIMITS, 1, ("deployer-c1", "deployer-c1.db"))
    assert lines[1:3] == ["dpl_swarm_network deployer-c1 --label deployer.instance=c1 deployer-c1 || exit 1",
                          "dpl_swarm_network deployer_c1_db --label deployer.instance=c1 deployer_c1_db || exit 1"]


def test_a_service_s_network_as_the_swarm_names_it_is_a_dns_label_no_instance_s_network_can_be():
    assert service.overlay("deployer-shop.db") == "deployer_shop_db"
    assert service.overlay("deployer-shop") == "deployer-shop"
    assert service.overlay("deployer-router") == "deployer-router"


def test_a_wan_endpoint_of_replicas_is_refused_naming_the_key_and_by_scale_naming_the_service(parse):
    text = "web: {image: team/web, replicas: 2, register: {8080: {name: http, wan: true}}}\n"
    with pytest.raises(TemplateError) as error:
        service.refused(parse(text))
    assert error.value.key == "web.register" and "a wan endpoint of replicas is not done on a swarm" in str(error.value)
    service.refused(parse(text.replace("replicas: 2", "replicas: 1")))

    specs = on_a_swarm(text)  # as `scale` makes them
    with pytest.raises(DeployerError) as error:
        plan_script("c1", [Action(CREATE, unit, "new", s) for unit, s in specs.items()], {}, LIMITS, 1)
    assert error.value.message.startswith("service web: a wan endpoint of replicas is not done on a swarm")


def stopped_facts(specs, count):
    """The facts of c1_web that ``stop`` stopped when it ran ``count`` tasks of the state's spec (``specs``)."""
    state = InstanceState("c1", "app.yaml", 2, "", "", services={u: ServiceState.of(s, "") for u, s in specs.items()})
    stated = json.dumps({"state": json.loads(state.to_json()), "entry": {}})
    web = inspected("c1_web", "web", service.whole(next(iter(specs.values()))).config_hash, 0)
    web["Spec"]["Labels"]["deployer.stopped"] = str(count)
    out = {"roots": "/s\n/v\n", "networks": "", "services": json.dumps([web]), "tasks": "", "stated": stated}
    return ServiceFacts("c1").read(out, "mgr")


def test_a_stopped_service_is_its_replicas_each_stopped_not_missing_and_a_deploy_starts_it(render):
    specs = render_specs(REPLICATED)

    facts = stopped_facts(specs, 3)

    assert [(c.unit, c.running, c.status) for c in facts.containers] == [
        ("web.1", False, "stopped"), ("web.2", False, "stopped"), ("web.3", False, "stopped")]
    assert [c.config_hash for c in facts.containers] == [s.config_hash for s in specs.values()]  # not drifted
    actions = plan(list(specs.values()), facts.state, facts.containers, {})
    assert {(a.kind, a.reason) for a in actions} == {(RECREATE, "container stopped")}
    line, = plan_script("c1", actions, facts.state.services, Limits(60, 1, 5, batch=2), 3,
                        stopped=stopped_services(facts.containers))[1:]
    words = shlex.split(line)
    assert words[:6] == ["dpl_swarm_start", "web", "c1_web", "140", "5", "3"]  # its count in the template
    assert words[6] == "--detach" and "--replicas" not in words and words[-4:] == ["c1_web", "||", "exit", "1"]


def test_a_stopped_service_of_one_task_says_how_many_start_brings_back(render):
    facts = stopped_facts(render_specs(WEB), 1)

    (web,) = facts.containers
    assert (web.name, web.running, web.status) == ("c1.web", False, "stopped (1 task when started)")
    assert stopped_services(facts.containers) == {"web"}


def test_stop_start_and_restart_are_one_step_a_service_each_waiting_for_swarm(render):
    specs = list(render_specs(REPLICATED + "db: {image: pg, stop_timeout: 30}\n").values())
    settings = Settings(health_timeout=60, rolling_batch=2)

    assert controlled("c1", "stop", specs, settings) == ["dpl_swarm_stop web c1_web 70 || exit 1",
                                                         "dpl_swarm_stop db c1_db 90 || exit 1"]
    assert controlled("c1", "start", specs[:3], settings) == ["dpl_swarm_start web c1_web 140 5 || exit 1"]
    assert controlled("c1", "restart", specs[3:], settings) == ["dpl_swarm_restart db c1_db 70 5 || exit 1"]


def test_one_replica_alone_is_not_stopped_on_a_swarm_and_the_error_names_its_service(render):
    manager = Manager(LocalRunner(), Settings())

    with pytest.raises(DeployerError) as error:
        manager.control("c1", "stop", [render_specs(REPLICATED)["web.2"]], "ops@laptop", 0)

    assert str(error.value) == ("host local: instance c1: stop of one replica (web.2) is not done on a swarm, which "
                                "stops a service's tasks together: name the service (web)")


def test_a_one_off_is_a_job_of_one_task_of_the_service_s_spec_never_restarted_without_ports_alias_or_healthcheck(
        render):
    text = WEB + ("  restart: on-failure:3\n  user: app\n  volumes: ['/data']\n  placement: {constraints: "
                  "['node.hostname == db1']}\n  healthcheck: {cmd: 'wget -q localhost', retries: 2}\n")
    web = render(text)["web"]

    args = service.job_args(web, ["migrate", "--all"], "team/web:2@sha256:abc")

    assert args == [
        "--detach", "--no-resolve-image", "--with-registry-auth", "--mode", "replicated-job", "--restart-condition",
        "none",
        "--endpoint-mode", "dnsrr", "--label", "deployer.instance=c1", "--label", "deployer.one-off=c1",
        "--container-label", "deployer.one-off=c1", "--env", "GREETING=hello", "--network", "name=deployer-c1",
        "--init", "--user", "app", "--no-healthcheck",
        "--mount", "type=volume,source=c1_web_data,target=/data,volume-label=deployer.instance=c1",
        "--constraint", "node.hostname == db1", "team/web:2@sha256:abc", "migrate", "--all"]
    assert service.job_args(web, [])[-5:] == ["team/web:2", "httpd", "-f", "-p", "8080"]  # no command: the service's


def test_a_one_off_of_a_service_with_secrets_reads_them_then_runs_its_command_behind_the_image_s_entrypoint():
    web = with_secrets(SECRET, TOKEN="t", KEY="k")["web"]

    args = service.job_args(web, ["migrate"], command=(("entry",), ("default",)))

    assert [args[i + 1].split(",")[1] for i, a in enumerate(args) if a == "--secret"] == ["target=KEY", "target=TOKEN"]
    assert args[args.index("--entrypoint") + 1].startswith("/bin/sh -c ")
    assert args[-3:] == ["team/web:2", "entry", "migrate"]


def test_a_one_off_s_name_fits_what_swarm_takes_with_the_suffix_the_script_adds():
    assert service.job_name("c1", "web", "release") == "c1_web_release"
    assert len(service.job_name("i" * 40, "s" * 40, "run")) + len("_0123abcd") == 63


def test_a_one_off_left_behind_is_not_one_of_the_instance_s_services():
    job = {"Spec": {"Name": "c1_web_release_0123abcd", "Labels": {"deployer.instance": "c1", "deployer.one-off": "c1"},
                    "Mode": {"ReplicatedJob": {}}, "TaskTemplate": {"ContainerSpec": {"Image": "team/web:2"}}}}
    out = {"roots": "/s\n/v\n", "networks": "", "services": json.dumps([inspected("c1_web", "web", "abc", 1), job]),
           "tasks": "c1_web.1 node-b Running 3 minutes ago\n"}

    assert [c.name for c in ServiceFacts("c1").read(out, "mgr").containers] == ["c1.web"]


def test_a_release_command_runs_right_before_its_service_s_step_and_a_new_one_s_before_its_wave(render):
    specs = render(WEB + "db: {image: pg}\napp: {image: team/app}\n")
    old = render(WEB.replace("hello", "hi"))["web"]
    actions = [Action(RECREATE, "web", "env changed", specs["web"]), Action(CREATE, "db", "new", specs["db"]),
               Action(CREATE, "app", "new", specs["app"])]
    limits = dataclasses.replace(LIMITS, release_timeout=30)

    lines = plan_script("c1", actions, {"web": ServiceState.of(old, "")}, limits, 2, images={"team/web:2": "team/web@x"},
                        deps={"app": {"db"}}, releases={"web": ["migrate"], "app": ["seed", "it's"]})

    assert [line.split()[0] if line.startswith(("pids", "failed")) else " ".join(line.split()[:2])
            for line in lines[1:]] == [
        "dpl_swarm_release web", "dpl_swarm_update web", "pids=", "dpl_swarm_probe 60", "dpl_swarm_create db",
        "failed=0;", "dpl_swarm_release app", "pids=", "dpl_swarm_create app", "failed=0;"]
    assert lines[1] == shlex.join(["dpl_swarm_release", "web", "c1_web_release", "30",
                                   *service.job_args(specs["web"], ["migrate"], "team/web@x")]) + " || exit 1"
    assert shlex.split(lines[7])[-6:] == ["team/app", "seed", "it's", "||", "exit", "1"]


def test_a_release_config_records_the_release_commands_the_script_ran():
    line = releases.record(None, {"release": 0, "at": "now"}, released=True)

    ran = subprocess.run(["sh", "-c", f'dpl_swarm_record() {{ printf %s "$3"; }}\n{line}'], capture_output=True,
                         text=True, env={"dpl_released": '{"service":"web","exit_code":0,"seconds":1.5}'})

    assert json.loads(ran.stdout) == {"state": None, "entry": {
        "releases": [{"service": "web", "exit_code": 0, "seconds": 1.5}], "release": 0, "at": "now"}}


@pytest.mark.parametrize("tty, stdin, said", [(True, None, "a terminal"), (False, object(), "input")])
def test_run_on_a_swarm_with_a_terminal_or_piped_input_is_refused_saying_what_to_do_before_asking_the_manager(
        render, tty, stdin, said):
    runner = LocalRunner()
    runner.start = None  # any script would fail the test

    with pytest.raises(DeployerError) as error:
        Manager(runner, Settings()).one_off("c1", render(WEB)["web"], ["sh"], tty, stdin)

    assert f"run on a swarm is a job, whose task cannot be given {said}: run the command with no input " \
        "(< /dev/null)" in str(error.value) and error.value.instance == "c1"
