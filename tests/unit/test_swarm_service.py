"""The Swarm engine's pure parts: a spec as ``docker service create``/``update`` arguments
(service.py), the plan as service commands (manager.plan_script), the facts a manager
reports read back as the core's containers (facts.py), releases as configs (releases.py).
Exact argv, as the host's commands are tested."""

import base64
import json
import shlex

import pytest

from deployer.errors import DeployerError, TemplateError
from deployer.model.plan import Action, plan, CREATE, KEEP, RECREATE, REMOVE
from deployer.model.state import InstanceState, ServiceState
from deployer.remote.apply import Limits
from deployer.swarm import releases, service
from deployer.swarm.facts import ServiceFacts
from deployer.swarm.manager import plan_script

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
        "--detach", "--no-resolve-image", "--name", "c1_web", "--replicas", "1", "--endpoint-mode", "dnsrr",
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
        "--detach", "--no-resolve-image", "--image", "team/web:3",
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

    assert [line.split()[0] for line in lines] == ["I=c1;", "dpl_swarm_network", "dpl_swarm_probe", "dpl_swarm_down",
                                                   "dpl_swarm_update", "pids=", "dpl_swarm_create", "failed=0;"]
    assert lines[1] == "dpl_swarm_network deployer-c1 --label deployer.instance=c1 deployer-c1 || exit 1"
    assert lines[2] == "dpl_swarm_probe 60 team/new"  # a new service's image used by name; a warning only
    assert lines[3] == "dpl_swarm_down gone c1_gone || exit 1"
    assert lines[4].startswith("dpl_swarm_update web c1_web 70 --detach") and lines[4].endswith(" c1_web || exit 1")
    assert lines[6].startswith("dpl_swarm_create new c1_new 70 5 --detach") and lines[6].endswith(' & pids="$pids $!"')
    assert lines[7] == 'failed=0; for p in $pids; do wait "$p" || failed=1; done; [ "$failed" = 0 ] || exit 1'


def test_new_services_start_at_once_in_waves_each_after_those_it_exposes_as_on_one_host(render):
    specs = render("db: {image: pg}\ncache: {image: redis}\napp: {image: app}\nworker: {image: app}\n")
    actions = [Action(CREATE, name, "new", spec) for name, spec in specs.items()]
    limits = Limits(health_timeout=60, min_uptime=1, history=5, parallel_starts=2)

    lines = plan_script("c1", actions, {}, limits, 1, deps={"app": {"db", "cache"}, "worker": {"app"}})

    started = [line.split()[1] if line.startswith("dpl_swarm_create") else line.split()[0] for line in lines[2:]]
    assert started == ["pids=", "db", "cache", "failed=0;", "pids=", "app", "failed=0;", "pids=", "worker", "failed=0;"]


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


def inspected(name, service, config_hash, replicas, update=None):
    return {"Spec": {"Name": name, "Labels": {"deployer.service": service, "deployer.config-hash": config_hash,
                                              "deployer.release": "2"},
                     "Mode": {"Replicated": {"Replicas": replicas}},
                     "TaskTemplate": {"ContainerSpec": {"Image": "team/web:2"}},
                     "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 80}]}},
            "CreatedAt": "2026-12-02T04:00:00Z", **({"UpdateStatus": {"State": update}} if update else {})}


def test_each_service_is_one_container_to_the_core_saying_where_its_tasks_run():
    out = {"roots": "/s\n/v\n", "networks": "ingress\ndeployer-c1\nbridge\n",
           "services": json.dumps([inspected("c1_web", "web", "abc", 2),
                                   inspected("c1_db", "db", "def", 1, "updating")]),
           "tasks": "c1_web.1 node-b Running 3 minutes ago\nc1_web.2 node-a Running 3 minutes ago\n"
                    "c1_db.1 node-a Preparing 2 seconds ago\n"}

    facts = ServiceFacts("c1", ("deployer-c1", "deployer-c1.db")).read(out, "mgr")

    web, db = facts.containers
    assert (web.name, web.running, web.status, web.config_hash, web.release, web.ports) == (
        "c1.web", True, "2/2 running on node-a, node-b", "abc", 2, ("*:80->8080/tcp",))
    assert (db.name, db.running, db.status) == ("c1.db", False, "0/1 running, update updating")
    assert facts.networks == {"deployer-c1"} and facts.state is None and facts.images == {}


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
