"""The Swarm engine's shell (``deployer/swarm/sh/swarm.sh``), run for real against the stub
docker: each step waits for Swarm's verdict and reports it as a one-host step does (an
``ok`` mark, or exit 1 and an error naming the service and why)."""

import hashlib
import re
import time

import pytest

from deployer.errors import DeployerError
from deployer.remote.framing import sections as framed
from deployer.remote.scripts import call
from deployer.remote.session import LocalRunner
from deployer.settings import Settings
from deployer.swarm.manager import JOB, SOURCE, Manager
from stubdocker import BOUNDARY

USES = (SOURCE, JOB)
RUNNING = "service ps --filter desired-state=running --format {{.CurrentState}} c1_web"
ERRORS = "service ps --no-trunc --format {{.Error}} c1_web"
TASKS = "service ps --no-trunc --format {{.ID}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}} c1_web"
UPDATE_STATUS = "service inspect --format {{with .UpdateStatus}}* c1_web"
MANAGER = "info --format {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}"
LOCK = "deployer-lock-" + hashlib.sha256(b"c1").hexdigest()[:16]


def create(*args):
    return call("dpl_swarm_create", "web", "c1_web", 10, 2, *args, "--name", "c1_web", "team/web")


def update():
    return call("dpl_swarm_update", "web", "c1_web", 10, "--env-add", "A=1", "c1_web")


def ticking(shell):
    """A stub ``date`` whose every call is a second after the last (as +%s%N and +%s.%N):
    the checks' clock, which the stub sleep leaves standing."""
    clock = shell.docker.bin / "date"
    clock.write_text('#!/bin/sh\nn=$(($(cat "$0.now" 2>/dev/null || echo 0) + 1))\necho "$n" >"$0.now"\n'
                     'case "$1" in +%s%N) echo "${n}000000000" ;; *) echo "$n.000000000" ;; esac\n')
    clock.chmod(0o755)


def test_a_new_service_is_done_once_its_task_has_run_for_the_monitor_period(shell):
    ticking(shell)
    shell.docker.answer(TASKS, "t1|Running|Running 1 second ago|\n")
    shell.docker.answer(TASKS, "t1|Running|Starting 1 second ago|\n", nth=1)

    ran = shell.run(create(), USES)

    assert ran.exited == 0 and ran.done == ["web"] and all(ran.marks("ok")[0])  # with the step's times
    assert shell.docker.log()[0] == "service create --name c1_web team/web"
    assert shell.docker.log().count(TASKS) == 4  # starting, then running: first seen, 1 s, 2 s on end


def test_a_task_replaced_while_it_is_watched_starts_the_monitor_period_anew(shell):
    ticking(shell)
    shell.docker.answer(TASKS, "t2|Running|Running 1 second ago|\nt1|Shutdown|Complete 1 second ago|\n")
    shell.docker.answer(TASKS, "t1|Running|Running 1 second ago|\n", nth=1)
    shell.docker.answer(TASKS, "t1|Running|Running 2 seconds ago|\n", nth=2)

    ran = shell.run(create(), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log().count(TASKS) == 5  # t1 seen twice, then t2: first seen, 1 s, 2 s on end


def test_a_new_service_whose_task_fails_is_removed_naming_the_task_s_error(shell):
    shell.docker.answer(TASKS, "t2|Running|Starting 1 second ago|\n"
                               "t1|Shutdown|Failed 1 second ago|No such image: team/web:latest\n")

    ran = shell.run(create(), USES)

    assert ran.exited == 1 and ran.done == []
    assert "web: its task failed: No such image: team/web:latest" in ran.error.message
    assert shell.docker.log()[-1] == "service rm c1_web"


def test_a_new_service_that_never_runs_fails_after_its_limit(shell):
    ran = shell.run(create(), USES)

    assert ran.exited == 1 and "web: not running after 10 s" in ran.error.message
    assert shell.docker.log()[-1] == "service rm c1_web"


def test_hostile_values_reach_docker_as_they_are(shell):
    hostile = """A=$(touch /tmp/pwned)'"; rm -rf / `id`\nB"""
    shell.docker.answer(TASKS, "t1|Running|Running now|\n")

    shell.run(create("--env", hostile), USES)

    assert ("service", "create", "--env", hostile, "--name", "c1_web", "team/web") in shell.docker.calls()


def test_an_update_is_done_when_swarm_says_the_update_that_started_after_it_completed(shell):
    future = int(time.time()) + 100
    shell.docker.answer(UPDATE_STATUS, f"{future} completed \n")
    shell.docker.answer(UPDATE_STATUS, "1000 completed an earlier update\n", nth=1)  # the last update's status

    ran = shell.run(update(), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log()[0] == "service update --env-add A=1 c1_web"
    asked = UPDATE_STATUS.replace("*", "{{.StartedAt.Unix}} {{.State}} {{.Message}}{{end}}")
    assert shell.docker.log().count(asked) == 2


def test_an_update_swarm_rolled_back_fails_the_step_saying_why_once_the_old_task_runs_again(shell):
    future = int(time.time()) + 100
    shell.docker.answer(UPDATE_STATUS, f"{future} rollback_completed update rolled back due to failure of task x\n")
    shell.docker.answer(ERRORS, "task: non-zero exit (3)\n")
    shell.docker.answer(RUNNING, "Running 1 second ago\n")
    shell.docker.answer(RUNNING, "Ready 1 second ago\n", nth=1)  # Swarm calls it complete before it runs

    ran = shell.run(update(), USES)

    assert ran.exited == 1 and ran.done == [] and shell.docker.log().count(RUNNING) == 2
    assert ran.error.message == ("web: the update failed and was rolled back (update rolled back due to failure of "
                                 "task x): task: non-zero exit (3)")


def scale(to):
    return call("dpl_swarm_scale", "web", "c1_web", 10, 3, to)


def test_a_new_count_is_done_once_as_many_tasks_run_as_it_asks_and_no_more(shell):
    shell.docker.answer(RUNNING, "Running 1 second ago\n" * 5)
    shell.docker.answer(RUNNING, "Running 1 second ago\n" * 3 + "Starting 1 second ago\n" * 2, nth=1)

    ran = shell.run(scale(5), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log()[0] == "service update --detach --replicas 5 c1_web"
    assert shell.docker.log().count(RUNNING) == 2


def test_a_new_count_that_does_not_all_run_puts_the_count_back_naming_why(shell):
    shell.docker.answer(RUNNING, "Running 1 second ago\n" * 3 + "Pending 1 second ago\n")
    shell.docker.answer(ERRORS, "no suitable node\n")

    ran = shell.run(scale(4), USES)

    assert ran.exited == 1 and ran.done == []
    assert ran.error.message == "web: 4 tasks did not all run within 10 s: no suitable node; back to 3"
    assert shell.docker.log()[-1] == "service update --detach --replicas 3 c1_web"


def test_an_update_that_never_ends_fails_after_its_limit(shell):
    ran = shell.run(update(), USES)

    assert ran.exited == 1 and ran.error.message == "web: the update did not end within 10 s (state: not started)"


def test_destroy_of_an_instance_the_swarm_does_not_have_changes_nothing(shell):
    ran = shell.run(call("dpl_swarm_destroy", 0, 0, "ops@laptop"), USES)

    assert ran.exited == 0 and ("missing",) in ran.heard
    assert not shell.instance_dir.exists()


def test_destroy_removes_services_then_networks_once_free_then_configs_and_secrets_its_lock_last(shell):
    label = "--filter label=deployer.instance=c1"
    shell.docker.answer(f"service ls -q {label}", "s1\ns2\n")
    for nth in (1, 2, 3):  # listed until removed, and once more: the manager's own tasks were going
        shell.docker.answer(f"network ls -q {label}", "n1\n", nth=nth)
    shell.docker.answer(f"secret ls -q {label}", "x1\n")
    shell.docker.answer(f"secret ls {label} --format {{{{.Name}}}}", "shop-key\n")
    shell.docker.fail("network rm n1", nth=1)  # its services' tasks are still going

    ran = shell.run(f"DPL_HEALTH_TIMEOUT=5\n{call('dpl_swarm_destroy', 0, 0, 'ops@laptop')}", USES)

    assert ran.exited == 0, ran.stderr
    removed = [" ".join(c) for c in unbeaten(shell.docker.calls()) if c[1:2] == ("rm",)]
    assert removed[:-1] == ["service rm s1 s2", "network rm n1", "network rm n1", "secret rm shop-key"]
    assert re.fullmatch(rf"config rm {LOCK} ({LOCK}-\d+)-0 \1-1", removed[-1])  # the lock and its beats


def test_a_release_is_a_config_of_the_instance_and_only_the_newest_are_kept_with_what_runs(shell):
    label = "--filter label=deployer.instance=c1"
    shell.docker.answer(f"config ls -q {label}", "a\nb\nc\nd\n")
    shell.docker.answer(f"config ls -q {label} --filter label=deployer.state", "b\nd\n")
    shell.docker.answer("config inspect --format {{index .Spec.Labels \"deployer.at\"}} {{.ID}} a b c d",
                        "40 a\n30 b\n20 c\n10 d\n")
    shell.docker.answer("config inspect --format {{index .Spec.Labels \"deployer.at\"}} {{.ID}} b d", "30 b\n10 d\n")

    ran = shell.run(call("dpl_swarm_record", 1, 1, '{"entry": "it\'s $(id)"}'), USES)

    assert ran.exited == 0, ran.stderr
    created = next(c for c in shell.docker.calls() if c[:2] == ("config", "create"))
    assert created[2:4] == ("--label", "deployer.instance=c1")
    assert created[-3:] == ("deployer.state=1", created[-2], "-")
    assert created[-2].startswith("deployer-") and len(created[-2]) == len("deployer-") + 16
    assert [" ".join(c) for c in shell.docker.calls() if c[:2] == ("config", "rm")] == ["config rm c", "config rm d"]


def unbeaten(calls):
    """The calls but those of the lock's beats (dpl_swarm_beat: as often as the stub's sleep lets it)."""
    return [c for c in calls if LOCK in c or not any(re.fullmatch(rf"{LOCK}-\d+-[01]", arg) for arg in c)]


def lock(wait=2):
    """The lock taken as a manager's script takes it (its node id first)."""
    return "dpl_swarm_manager || exit 1\n" + call("dpl_swarm_lock", wait, "ops@laptop") + " || exit 1\necho held"


def test_the_lock_is_a_config_only_one_manager_can_create_removed_when_the_script_ends(shell):
    shell.docker.answer(MANAGER, "true node-a\n")

    ran = shell.run(lock(), USES)

    assert ran.exited == 0 and ran.stdout.endswith("held\n")
    created, removed = [c for c in unbeaten(shell.docker.calls()) if c[0] == "config"]
    assert created[:5] == ("config", "create", "--label", "deployer.lock=c1", LOCK)
    assert removed[:3] == ("config", "rm", LOCK)  # and its beats, if any were made


def test_a_lock_held_elsewhere_is_waited_for_then_named(shell):
    shell.docker.answer(MANAGER, "true node-a\n")
    shell.docker.fail(f"config create --label deployer.lock=c1 {LOCK} -", stderr="Error: config already exists\n")
    shell.docker.answer(f"config inspect --format * {LOCK}", "node-b 42 99 ci@runner since 2026-12-02T04:00:00Z")
    shell.docker.answer("node inspect --format {{.Status.State}} node-b", "ready\n")
    shell.docker.answer(f"config inspect --format {{{{.CreatedAt.Unix}}}} {LOCK}", f"{int(time.time()) - 25}\n")

    ran = shell.run(lock(), USES)

    assert ran.exited == 1 and "held" not in ran.stdout
    assert ran.error.message == "locked by ci@runner since 2026-12-02T04:00:00Z (waited 2 s; --lock-wait waits longer)"
    assert [m[0] for m in ran.marks("waiting")] == ["0", "1"]


def test_a_lock_whose_holder_is_gone_is_taken_over(shell):
    shell.docker.answer(MANAGER, "true node-a\n")
    shell.docker.fail(f"config create --label deployer.lock=c1 {LOCK} -", stderr="Error: config already exists\n",
                      nth=1)
    gone = "node-a 999999999 1 ci@runner since then"  # a process of this node that no longer runs
    shell.docker.answer(f"config inspect --format * {LOCK}", gone)

    ran = shell.run(lock(), USES)

    assert ran.exited == 0 and ran.stdout.endswith("held\n") and ran.marks("waiting") == []
    assert [c[:2] for c in unbeaten(shell.docker.calls()) if c[0] == "config"] == [
        ("config", "create"), ("config", "inspect"), ("config", "ls"), ("config", "rm"), ("config", "create"),
        ("config", "rm")]


@pytest.mark.parametrize("lock_age, beat_age, taken", [(100, None, True), (100, 40, True), (100, 3, False),
                                                       (10, None, False)])
def test_a_holder_on_another_live_node_is_gone_once_neither_its_lock_nor_a_beat_is_30_s_young(
        shell, lock_age, beat_age, taken):
    now = int(time.time())
    shell.docker.answer(MANAGER, "true node-a\n")
    shell.docker.fail(f"config create --label deployer.lock=c1 {LOCK} -", stderr="Error: config already exists\n",
                      nth=1)
    shell.docker.answer(f"config inspect --format * {LOCK}", "node-b 42 99 ci@runner since then")
    shell.docker.answer("node inspect --format {{.Status.State}} node-b", "ready\n")  # SIGKILLed, or still going
    beat = f"{LOCK}-42-1"
    shell.docker.answer(f"config ls -q --filter name={LOCK}-42-", f"{beat}\n" if beat_age else "")
    shell.docker.answer(f"config inspect --format {{{{.CreatedAt.Unix}}}} {LOCK}{f' {beat}' * bool(beat_age)}",
                        f"{now - lock_age}\n" + (f"{now - beat_age}\n" if beat_age else ""))

    ran = shell.run(lock(wait=0), USES)

    assert (ran.exited == 0 and ran.stdout.endswith("held\n")) is taken
    removals = [c for c in shell.docker.calls() if c[:3] == ("config", "rm", LOCK)]
    assert len(removals) == (2 if taken else 0)  # the stale lock, then its own at the end


def test_a_host_that_is_no_manager_is_said_so(shell):
    shell.docker.answer(MANAGER, "false \n")

    ran = shell.run(lock(), USES)

    assert ran.exited == 1 and "no swarm manager" in ran.error.message
    assert [c[0] for c in shell.docker.calls()] == ["info"]


def test_a_probe_names_each_node_that_lacks_an_image_used_by_name_and_leaves_nothing(shell):
    tasks = "service ps --format {{.Node}} {{.CurrentState}} deployer-probe-*"
    shell.docker.answer(tasks, "mgr Starting now\nmgr Failed 2 seconds ago\nwrk Rejected now\n")  # started again
    shell.docker.answer(tasks, "mgr Starting now\nmgr Failed 1 second ago\n Pending now\n", nth=1)
    shell.docker.answer(tasks, "mgr Starting now\nmgr Failed 1 second ago\nwrk Starting now\n", nth=2)
    shell.docker.answer("service ps --no-trunc --format {{.Node}} {{.Error}} deployer-probe-*",
                        "mgr starting container failed: no such file or directory\n"
                        "wrk No such image: local/app:latest\nwrk No such image: local/app:latest\n")

    ran = shell.run(call("dpl_swarm_probe", 10, "local/app", "team/web:2"), USES)

    assert ran.exited == 0 and ran.marks("lacks") == [("local/app", "wrk"), ("team/web:2", "wrk")]
    created = [c for c in shell.docker.calls() if c[:2] == ("service", "create")]
    polls = [c[-1] for c in shell.docker.calls() if c[:3] == ("service", "ps", "--format") and "{{.Node}}" in c[3]]
    assert polls.count(created[0][-4]) == 3  # until a task of each node had ended
    assert [c[-1] for c in created] == ["local/app", "team/web:2"]
    assert created[0][2:-1] == ("--detach", "--quiet", "--no-resolve-image", "--with-registry-auth",
                                "--mode", "global-job", "--label", "deployer.instance=c1", "--name", created[0][-4],
                                "--entrypoint", "/deployer-probe")
    assert [c[-1] for c in shell.docker.calls() if c[:2] == ("service", "rm")] == [c[-4] for c in created]


def test_a_probe_that_cannot_run_says_nothing_and_fails_nothing(shell):
    shell.docker.fail("service create *")

    ran = shell.run(call("dpl_swarm_probe", 10, "local/app") + " || exit 1\necho after", USES)

    assert ran.exited == 0 and ran.marks("lacks") == [] and "after" in ran.stdout


def test_a_secret_is_created_from_the_script_s_body_on_docker_s_stdin_exactly_and_only_when_missing(shell):
    hostile = """it's "$(touch /tmp/pwned)"; `id` \\ done\n\n"""
    shell.docker.fail("secret inspect c1_A_new", stderr="Error: no such secret: c1_A_new\n")
    shell.docker.answer("secret inspect c1_A_old", "[{}]\n")

    ran = shell.run(call("dpl_swarm_secret", "c1_A_new", hostile) + " || exit 1\n" +
                    call("dpl_swarm_secret", "c1_A_old", "unused") + " || exit 1", USES)

    assert ran.exited == 0
    assert shell.docker.stdin("secret", "c1_A_new") == hostile
    assert ("secret", "create", "--label", "deployer.instance=c1", "c1_A_new", "-") in shell.docker.calls()
    assert not any(hostile in arg for call_ in shell.docker.calls() for arg in call_)  # never an argument
    assert shell.docker.stdin("secret", "c1_A_old") is None  # it exists: a secret is immutable


def test_a_secret_docker_refuses_fails_the_deploy_naming_it(shell):
    shell.docker.fail("secret inspect *")
    shell.docker.fail("secret create *", stderr="Error response from daemon: rpc error: invalid name\n")

    ran = shell.run(call("dpl_swarm_secret", "c1_A_1", "v") + " || exit 1", USES)

    assert ran.exited == 1 and "secret c1_A_1: Error response from daemon: rpc error: invalid name" in ran.error.message


@pytest.mark.parametrize("keep, removed", [(0, ["c1_A_old", "c1_A_older", "c1_D_1"]), (1, ["c1_A_older"])])
def test_only_the_instance_s_secrets_no_service_uses_are_removed_but_the_newest_kept_and_a_refusal_fails_nothing(
        shell, keep, removed):
    shell.docker.answer("secret ls --filter label=deployer.instance=c1 *",
                        "2026-12-01 10:00:00 +0000 UTC c1_A_older\n2026-12-02 10:00:00 +0000 UTC c1_A_old\n"
                        "2026-12-02 11:00:00 +0000 UTC c1_A_new\n2026-12-02 11:00:00 +0000 UTC c1_B_1\n"
                        "2026-12-01 09:00:00 +0000 UTC c1_D_1\n")
    shell.docker.answer("service ls -q --filter label=deployer.instance=c1", "id1\nid2\n")
    shell.docker.answer("service inspect --format * id1 id2", "c1_A_new \nc1_B_1 c1_C_1 \n")
    shell.docker.fail("secret rm c1_A_old", stderr="Error: secret is in use\n")

    ran = shell.run(f"dpl_swarm_unused {keep} || exit 1", USES)

    assert ran.exited == 0
    assert [line for line in shell.docker.log() if line.startswith("secret rm")] == [f"secret rm {n}" for n in removed]


def test_a_secret_the_deploy_has_no_value_of_must_be_there_still_else_the_deploy_says_how_to_give_it(shell):
    shell.docker.fail("secret inspect c1_A_gone", stderr="Error: no such secret\n")

    kept = shell.run(call("dpl_swarm_secret", "c1_A_there") + " || exit 1", USES)
    gone = shell.run(call("dpl_swarm_secret", "c1_A_gone") + " || exit 1", USES)

    assert kept.exited == 0 and gone.exited == 1
    assert "the secret c1_A_gone is no longer on the swarm" in gone.error.message
    assert "--secrets FILE" in gone.error.message
    assert not any(line.startswith("secret create") for line in shell.docker.log())


def test_an_image_without_bin_sh_is_an_error_naming_the_service_and_a_container_made_to_ask_is_removed(shell):
    has = shell.run(call("dpl_swarm_shell", "app", "team/app") + " || exit 1", USES)
    shell.docker.fail("cp *")
    lacks = shell.run(call("dpl_swarm_shell", "app", "team/app") + " || exit 1", USES)

    assert has.exited == 0 and lacks.exited == 1
    assert "app: its image team/app has no /bin/sh, which on a swarm reads its secrets" in lacks.error.message
    assert ("create", "--pull", "never", "--entrypoint", "/bin/sh", "team/app") in shell.docker.calls()
    assert [line for line in shell.docker.log() if line.startswith("cp")] == ["cp new1:/bin/sh -", "cp new2:/bin/sh -"]
    assert shell.docker.containers() == {}  # each made to ask, then removed; never started


STATED = "config ls -q --filter label=deployer.state"
AT = ("config inspect --format {{index .Spec.Labels \"deployer.instance\"}} {{index .Spec.Labels \"deployer.at\"}} "
      "{{.ID}}")


def test_the_other_instances_newest_releases_that_say_what_runs_are_read_in_one_inspect(shell):
    shell.docker.answer(STATED, "a\nb\nc\nd\n")
    shell.docker.answer(f"{AT} a b c d", "shop 10 a\nc1 40 b\nshop 30 c\nblog 20 d\n")  # c1: this instance
    shell.docker.answer("config inspect d c", '[{"two": "configs"}]\n')

    ran = shell.run("dpl_swarm_others || exit 1", USES)

    assert ran.exited == 0, ran.stderr
    assert sections(ran.stdout)["others"] == '[{"two": "configs"}]\n'
    assert shell.docker.log()[-1] == "config inspect d c"  # blog's newest (d), shop's (c): not c1's, nor shop's older


def test_no_other_instance_is_no_release(shell):
    ran = shell.run("dpl_swarm_others || exit 1", USES)

    assert ran.exited == 0 and sections(ran.stdout)["others"] == "[]\n"
    assert shell.docker.log() == [STATED]


NETWORKS = "network ls --no-trunc --filter label=deployer.instance=c1 --format {{.ID}} {{.Name}}"
JOINED = "service inspect --format {{index .Spec.Labels \"deployer.instance\"}}/{{index .Spec.Labels " \
         "\"deployer.service\"}} {{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}} s1 s2 s3 s4"


def test_destroy_of_an_instance_whose_endpoints_others_expose_is_refused_naming_them_changing_nothing(shell):
    shell.docker.answer(NETWORKS, "n1 deployer-c1\nn2 deployer_c1_db\n")
    shell.docker.answer("service ls -q --filter label=deployer.instance", "s1\ns2\ns3\ns4\n")
    shell.docker.answer(JOINED, "c1/web n1 n2 \nshop/app nshop n2 \nblog/web nblog \nblog/api n2 \n")

    ran = shell.run(f"dpl_swarm_consumed || exit 1\n{call('dpl_swarm_destroy', 0, 'ops@laptop')}", USES)

    assert ran.exited == 1 and ran.error.message == (
        "the endpoints of c1 are exposed by other instances' services (blog/api, shop/app, as instance/service): "
        "destroy them, or deploy them without those expose entries, first; nothing was changed")
    assert not [c for c in shell.docker.calls() if c[1:2] == ("rm",)]


def test_an_instance_whose_networks_no_other_instance_joins_is_not_consumed(shell):
    shell.docker.answer(NETWORKS, "n1 deployer-c1\n")
    shell.docker.answer("service ls -q --filter label=deployer.instance", "s1\ns2\ns3\ns4\n")
    shell.docker.answer(JOINED, "c1/web n1 \nshop/app nshop \n")

    assert shell.run("dpl_swarm_consumed || exit 1", USES).exited == 0


COUNTS = 'service inspect --format {{.Spec.Mode.Replicated.Replicas}} {{index .Spec.Labels "deployer.stopped"}} c1_web'
KEPT = 'service inspect --format {{index .Spec.Labels "deployer.stopped"}} c1_web'
EVERY_STATE = "service ps --format {{.CurrentState}} c1_web"


def running(count):
    """``count`` tasks running, as the steady check (TASKS) reads them."""
    return "".join(f"t{n}|Running|Running 1 second ago|\n" for n in range(1, count + 1))


def control(verb, *args):
    return call(f"dpl_swarm_{verb}", "web", "c1_web", 10, *args)


def test_stop_scales_a_service_to_no_task_keeping_its_count_in_a_label_and_waits_until_none_runs(shell):
    shell.docker.answer(COUNTS, "3 \n")
    shell.docker.answer(EVERY_STATE, "Running 1 second ago\nShutdown 1 second ago\n", nth=1)  # stopping still

    ran = shell.run(control("stop"), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log() == [COUNTS, "service update --detach --replicas 0 --label-add deployer.stopped=3 c1_web",
                                  EVERY_STATE, EVERY_STATE]


def test_stop_of_a_stopped_service_keeps_the_count_it_had(shell):
    shell.docker.answer(COUNTS, "0 3\n")

    ran = shell.run(control("stop"), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert [line for line in shell.docker.log() if line.startswith("service update")] == []


def test_stop_whose_tasks_go_on_running_fails_naming_the_service(shell):
    shell.docker.answer(COUNTS, "1 \n")
    shell.docker.answer(EVERY_STATE, "Running 1 second ago\n")

    ran = shell.run(call("dpl_swarm_stop", "web", "c1_web", 2), USES)

    assert ran.exited == 1 and ran.error.message == "web: its tasks still run after 2 s"


def test_stop_of_a_service_the_swarm_lacks_names_it(shell):
    shell.docker.fail("service inspect *", stderr="Status: Error: no such service: c1_web, Code: 1\n")

    ran = shell.run(control("stop"), USES)

    assert ran.exited == 1 and ran.error.message == "web: Status: Error: no such service: c1_web, Code: 1"


def test_start_runs_the_count_stop_kept_again_and_is_done_once_they_ran_the_monitor_period(shell):
    ticking(shell)
    shell.docker.answer(KEPT, "3\n")
    shell.docker.answer(TASKS, running(3))

    ran = shell.run(control("start", 2), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log()[:2] == [KEPT, "service update --detach --replicas 3 --label-rm deployer.stopped c1_web"]
    assert shell.docker.log().count(TASKS) == 3  # first seen, 1 s, 2 s on end


def test_start_of_a_service_that_runs_changes_nothing(shell):
    ran = shell.run(control("start", 2), USES)

    assert ran.exited == 0 and ran.done == ["web"] and shell.docker.log() == [KEPT]


def test_a_deploy_starts_a_stopped_service_at_its_own_count_and_spec_in_one_update(shell):
    ticking(shell)
    shell.docker.answer(KEPT, "3\n")
    shell.docker.answer(TASKS, running(5))

    ran = shell.run(control("start", 2, 5, "--detach", "--env-add", "A=1", "c1_web"), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log()[1] == ("service update --detach --replicas 5 --label-rm deployer.stopped --detach "
                                     "--env-add A=1 c1_web")


def test_start_whose_tasks_fail_stops_the_service_again_keeping_its_count_and_says_why(shell):
    shell.docker.answer(KEPT, "3\n")
    shell.docker.answer(TASKS, "t1|Shutdown|Failed 1 second ago|task: non-zero exit (3)\n")

    ran = shell.run(control("start", 2), USES)

    assert ran.exited == 1 and ran.done == []
    assert ran.error.message == "web: its task failed: task: non-zero exit (3) | web: stopped again"
    assert shell.docker.log()[-1] == "service update --detach --replicas 0 --label-add deployer.stopped=3 c1_web"


def test_restart_replaces_every_task_as_an_update_waited_for_until_swarm_says_it_completed(shell):
    shell.docker.answer(UPDATE_STATUS, f"{int(time.time()) + 100} completed \n")

    ran = shell.run(control("restart", 2), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert shell.docker.log()[:2] == [KEPT, "service update --detach --force c1_web"]


def test_restart_of_a_stopped_service_starts_it(shell):
    ticking(shell)
    shell.docker.answer(KEPT, "2\n")
    shell.docker.answer(TASKS, running(2))

    ran = shell.run(control("restart", 2), USES)

    assert ran.exited == 0 and ran.done == ["web"]
    assert "service update --detach --replicas 2 --label-rm deployer.stopped c1_web" in shell.docker.log()
    assert "service update --detach --force c1_web" not in shell.docker.log()


OWN = "ps -q --filter label=com.docker.swarm.service.name=c1_web --filter status=running"
NODES = "service ps --filter desired-state=running --format {{.Node}} {{.CurrentState}} c1_web"


def test_a_task_on_the_manager_is_found_by_its_container(shell):
    shell.docker.answer(OWN, "abc123\ndef456\n")

    ran = shell.run(call("dpl_swarm_task", "c1_web"), USES)

    assert ran.exited == 0 and sections(ran.stdout) == {"container": "abc123\n"}


def test_without_a_task_on_the_manager_the_nodes_its_running_tasks_are_on_are_named_once_each(shell):
    shell.docker.answer(NODES, "node-b Running 1 minute ago\nnode-c Starting now\nnode-b Running 2 minutes ago\n")

    ran = shell.run(call("dpl_swarm_task", "c1_web"), USES)

    assert ran.exited == 0 and sections(ran.stdout) == {"nodes": "node-b\n"}


def sections(stdout):
    return {name: text for name, text in framed(stdout, BOUNDARY).items() if name != "_marks"}


def volumes_on_two_nodes(shell):
    """A swarm whose instance c1 has a service with a local volume whose tasks ran on this
    manager (mgr) and the worker (wrk), and one whose volume is a driver's."""
    label = "--filter label=deployer.instance=c1"
    shell.docker.answer(MANAGER, "true node-a\n")
    shell.docker.answer(f"service ls -q {label}", "s1\ns2\n")
    for nth in (1, 2):  # asked first, then removed (gone the next time)
        shell.docker.answer(f"volume ls -q {label}", "c1_db_data\n", nth=nth)
    shell.docker.answer("service inspect --format * s1", "c1_db_data= ")
    shell.docker.answer("service inspect --format * s2", "c1_files_data=nfs ")
    shell.docker.answer("service ps --format {{.Node}} s1", "wrk\nmgr\nwrk\n")
    shell.docker.answer("service ps --format {{.Node}} s2", "wrk\n")
    shell.docker.answer("info --format {{.Name}}", "mgr\n")


def test_destroy_with_volumes_removes_the_manager_s_and_marks_those_of_its_own_on_other_nodes_kept(shell):
    volumes_on_two_nodes(shell)

    ran = shell.run(f"DPL_HEALTH_TIMEOUT=5\n{call('dpl_swarm_destroy', 1, 0, 'ops@laptop')}", USES)

    assert ran.exited == 0, ran.stderr
    assert ran.marks("kept") == [("wrk", "c1_db_data")]  # not the driver's: removed with the manager's
    removed = [line for line in shell.docker.log() if " rm " in f" {line} " and f"{LOCK}-" not in line]  # no beat
    assert removed[:2] == ["service rm s1 s2", "volume rm c1_db_data"]


def test_destroy_with_volumes_of_other_nodes_is_an_error_naming_each_node_and_volume_once_all_else_is_gone(shell):
    volumes_on_two_nodes(shell)
    manager = Manager(LocalRunner(), Settings(state_dir=str(shell.state_dir)))

    with pytest.raises(DeployerError) as error:
        manager.destroy("c1", True, "ops@laptop", 0)

    assert str(error.value).endswith("instance c1: destroyed, but its volumes on other nodes are kept (a manager "
                                     "removes its own node's alone): on wrk: c1_db_data (docker volume rm them there)")
    assert "service rm s1 s2" in shell.docker.log()


JOB_PS = "service ps --no-trunc --format {{.ID}}|{{.CurrentState}}|{{.Error}} c1_web_release_*"
JOB_LOGS = "service logs --raw c1_web_release_*"
EXIT_CODE = "inspect --type task --format {{.Status.ContainerStatus.ExitCode}} t1"


def release(limit=600):
    return call("dpl_swarm_release", "web", "c1_web_release", limit, "--mode", "replicated-job", "team/web",
                "migrate", "--all")


def test_a_release_is_a_job_whose_lines_reach_the_client_as_they_come_its_end_marked_and_the_job_removed(shell):
    shell.docker.answer(JOB_PS, "t1|Complete 1 second ago|\n")
    shell.docker.answer(JOB_PS, "t1|Running 1 second ago|\n", nth=1)
    shell.docker.answer(JOB_LOGS, "one\ntwo, no newline")
    shell.docker.answer(JOB_LOGS, "one\n", nth=1)
    shell.docker.answer(EXIT_CODE, "0\n")

    ran = shell.run(release(), USES)

    assert ran.exited == 0
    assert ran.marks("release") == [("web", "one"), ("web", "two, no newline")]  # each line once, in order
    ((service, code, *stamps),) = ran.marks("released")
    assert (service, code, len(stamps)) == ("web", "0", 2)
    created, *_, removed = [c for c in shell.docker.calls() if c[:2] in (("service", "create"), ("service", "rm"))]
    assert created[:3] == ("service", "create", "--name") and created[4:] == (
        "--mode", "replicated-job", "team/web", "migrate", "--all")
    assert created[3].startswith("c1_web_release_") and len(created[3]) == len("c1_web_release_") + 8
    assert removed == ("service", "rm", created[3])


def test_a_failing_release_fails_its_step_saying_its_exit_code_and_last_lines(shell):
    shell.docker.answer(JOB_PS, 't1|Failed 1 second ago|"task: non-zero exit (3)"\n')
    shell.docker.answer(JOB_LOGS, "".join(f"migrating {n}\n" for n in range(1, 13)))
    shell.docker.answer(EXIT_CODE, "3\n")

    ran = shell.run(release(), USES)

    assert ran.exited == 1 and ran.marks("released")[0][:2] == ("web", "3")
    assert ran.error.message == "the release command of web failed (exit code 3): its service was not changed"
    assert ran.error.details == [f"migrating {n}" for n in range(3, 13)]
    assert shell.docker.log()[-1].startswith("service rm c1_web_release_")


def test_a_release_whose_task_cannot_run_says_why_and_is_no_release(shell):
    shell.docker.answer(JOB_PS, 't1|Rejected 1 second ago|"No such image: team/web:latest"\n')

    ran = shell.run(release(), USES)

    assert ran.exited == 1 and ran.marks("released") == []
    assert ran.error.message == "the release command of web could not start: No such image: team/web:latest"
    assert shell.docker.log()[-1].startswith("service rm c1_web_release_")


def test_a_release_that_does_not_end_is_stopped_after_its_limit(shell):
    shell.docker.answer(JOB_PS, "t1|Running 1 second ago|\n")

    ran = shell.run(release(limit=3), USES)

    assert ran.exited == 1 and ran.marks("released")[0][:2] == ("web", "124")
    assert "the release command of web did not end within 3 s (deployer.release_timeout): stopped" in ran.stderr
    assert shell.docker.log().count(JOB_PS.replace("*", "") + shell.docker.log()[-1][-8:]) == 12  # 4 a second
    assert shell.docker.log()[-1].startswith("service rm c1_web_release_")


def test_a_one_off_prints_its_task_s_stdout_and_stderr_apart_and_exits_with_its_exit_code(shell):
    ps = JOB_PS.replace("release", "run")
    shell.docker.answer(ps, 't1|Failed 1 second ago|"task: non-zero exit (7)"\n')
    shell.docker.answer(ps, "t1|Running 1 second ago|\n", nth=1)
    shell.docker.answer("service logs --raw c1_web_run_*", stdout="out 1\nout 2\n", stderr="err 1\n")
    shell.docker.answer("service logs --raw c1_web_run_*", stdout="out 1\n", nth=1)
    shell.docker.answer(EXIT_CODE, "7\n")

    ran = shell.run(call("dpl_swarm_run", "c1_web_run", "--mode", "replicated-job", "team/web", "false"), (JOB,))

    assert ran.exited == 7
    assert ran.stdout.endswith("out 1\nout 2\n") and ran.stdout.count("out 1") == 1
    assert ran.stderr == "err 1\n"
    assert shell.docker.log()[-1].startswith("service rm c1_web_run_")
