"""The replacement state machine (``sh/replace.sh``), run for real against a stub docker.

Each test starts from what the host has (the current container ``c1.web``, maybe a
retained one), runs one step as a deploy's script calls it, and checks what a user
would: the docker calls in order, which container ends up under which name, the step's
``ok`` mark, the exit status and the error a deploy reports. Containers the stub starts
are ``new1``, ``new2``...; those a test puts there are named by their role.
"""

import pytest

from deployer.remote.scripts import call

WEB, NEXT = "c1.web", "c1.web.next"
KEEP = "c1.web.r2"  # where the current container (release 2) is kept, stopped
RETAINED = "c1.web.r1"  # a container kept by an earlier deploy (release 1)


def up(keep=KEEP):
    """Stop-first: ``dpl_up`` as a deploy's script calls it (``docker run`` arguments last)."""
    return call("dpl_up", "web", WEB, keep, "-d", "--name", WEB, "team/app")


def first(keep=KEEP):
    """Start-first: ``dpl_first``, the new container running as NAME.next."""
    return call("dpl_first", "web", WEB, keep, "-d", "--name", NEXT, "team/app")


def again():
    return call("dpl_again", "web", WEB, KEEP, RETAINED)


def back():
    return call("dpl_back", "web", WEB, KEEP, RETAINED)


def crashes(docker, name):
    """The container that will run as ``name`` exits at once, saying why."""
    docker.states(name, "exited 1 ")
    docker.answer("container inspect --format {{.State.Status}},*", "exited, exit code 1\n")
    docker.logs(name, "starting\npanic: no config\n")


def failed(ran):
    """A failed step: no mark, exit 1 (the error is checked where it says something)."""
    return ran.exited == 1 and ran.done == []


@pytest.fixture
def docker(shell):
    """The stub, with the current container of web running."""
    shell.docker.container(WEB, id="current")
    return shell.docker


# -- dpl_started: has the new container started well? ----------------------------------


STARTED = {
    "no healthcheck": ["running 0 "],
    "healthy": ["running 0 healthy"],
    "healthy after starting": ["running 0 starting"] * 3 + ["running 0 healthy"],
}


@pytest.mark.parametrize("answers", STARTED.values(), ids=list(STARTED))
def test_a_container_that_runs_on_unrestarted_and_healthy_has_started(shell, answers):
    shell.docker.container(WEB)
    shell.docker.states(WEB, *answers)

    assert shell.run(call("dpl_started", WEB)).exited == 0


@pytest.mark.parametrize("answer", ["exited 1 ", "running 1 ", "restarting 2 ", "running 0 unhealthy", "created 0 "])
def test_a_container_that_exited_restarted_or_turned_unhealthy_has_not_started(shell, answer):
    shell.docker.container(WEB)
    shell.docker.states(WEB, answer)

    ran = shell.run(call("dpl_started", WEB))

    assert ran.exited == 1
    assert shell.docker.log(skip=()) == [f"container inspect {WEB}"]  # at once, no waiting


def test_a_container_that_is_gone_has_not_started(shell):
    assert shell.run(call("dpl_started", WEB)).exited == 1


def test_a_container_still_starting_is_reported_every_second_after_two(shell):
    shell.docker.container(WEB)
    shell.docker.states(WEB, *["running 0 starting"] * 5, "running 0 healthy")

    ran = shell.run(call("dpl_started", WEB))

    assert ran.exited == 0
    assert ran.marks("health") == [(WEB, "2")]


def test_a_container_never_healthy_fails_after_the_health_timeout(shell):
    shell.docker.container(WEB)
    shell.docker.states(WEB, "running 0 starting")

    ran = shell.run(call("dpl_started", WEB))

    assert ran.exited == 1
    assert ran.error.message == f"{WEB} was not healthy after 3 s"
    assert ran.marks("health") == [(WEB, "2")]
    assert len(shell.docker.log(skip=())) == 7  # polls 0 to 6, half a second apart


# -- dpl_away: the current container makes room -----------------------------------------


def test_the_current_container_is_renamed_to_where_it_is_kept(docker, shell):
    assert shell.run(call("dpl_away", WEB, KEEP)).exited == 0
    assert docker.containers() == {KEEP: "current running"}


def test_a_container_already_kept_under_that_name_is_replaced(docker, shell):
    docker.container(KEEP, id="stale", status="exited")

    assert shell.run(call("dpl_away", WEB, KEEP)).exited == 0
    assert docker.log() == [f"rename {WEB} {KEEP}", f"rm -f {KEEP}", f"rename {WEB} {KEEP}"]
    assert docker.containers() == {KEEP: "current running"}


def test_a_name_to_keep_under_taken_again_before_the_retry_leaves_the_current_container(docker, shell):
    docker.container(KEEP, id="stale", status="exited")
    docker.fail(f"rename {WEB} {KEEP}", nth=2)  # another container took the name meanwhile

    assert shell.run(call("dpl_away", WEB, KEEP)).exited == 1
    assert docker.containers() == {WEB: "current running"}


def test_there_is_none_to_retire_when_no_name_to_keep_it_under_is_given(docker, shell):
    assert shell.run(call("dpl_away", WEB, "")).exited == 3
    assert docker.log(skip=()) == []


def test_there_is_none_to_retire_when_the_current_container_was_removed_meanwhile(shell):
    assert shell.run(call("dpl_away", WEB, KEEP)).exited == 3


def test_a_current_container_that_cannot_be_renamed_stays_where_it_is(docker, shell):
    docker.fail(f"rename {WEB} {KEEP}")

    assert shell.run(call("dpl_away", WEB, KEEP)).exited == 1
    assert docker.containers() == {WEB: "current running"}


# -- dpl_up: stop-first -----------------------------------------------------------------


def test_stop_first_stops_and_keeps_the_current_container_then_runs_the_new_one(docker, shell):
    ran = shell.run(up())

    assert ran.exited == 0 and ran.done == ["web"]
    assert docker.log() == [f"rename {WEB} {KEEP}", f"stop {KEEP}", f"run {WEB}"]
    assert docker.containers() == {WEB: "new1 running", KEEP: "current exited"}


def test_a_step_done_is_marked_with_when_it_started_and_ended(docker, shell):
    ((service, t0, t1),) = shell.run(up()).marks("ok")

    assert service == "web" and 0 <= float(t1) - float(t0) < 10


def test_a_first_start_has_nothing_to_stop(shell):
    ran = shell.run(up(keep=""))

    assert ran.done == ["web"]
    assert shell.docker.log() == [f"run {WEB}"]


def test_a_current_container_removed_meanwhile_does_not_stop_the_new_one(shell):
    ran = shell.run(up())

    assert ran.done == ["web"]
    assert shell.docker.containers() == {WEB: "new1 running"}


def test_a_new_container_that_does_not_start_well_is_removed_and_the_current_one_comes_back(docker, shell):
    crashes(docker, WEB)

    ran = shell.run(up())

    assert failed(ran)
    assert docker.log() == [f"rename {WEB} {KEEP}", f"stop {KEEP}", f"run {WEB}", f"rm -f {WEB}",
                            f"rename {KEEP} {WEB}", f"start {WEB}"]
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.message == "the new container of web did not start well (exited, exit code 1)"
    assert ran.error.details == ["starting", "panic: no config"]


def test_a_docker_run_that_fails_brings_the_current_container_back(docker, shell):
    docker.fail("run *", exit=125, stderr="docker: Error response from daemon: pull access denied.\n")

    ran = shell.run(up())

    assert failed(ran)
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.message == "docker: Error response from daemon: pull access denied."


def test_a_first_start_that_fails_leaves_no_container(shell):
    crashes(shell.docker, WEB)

    assert failed(shell.run(up(keep="")))
    assert shell.docker.containers() == {}


def test_a_current_container_that_cannot_be_kept_stops_the_step_before_anything_runs(docker, shell):
    docker.fail(f"rename {WEB} {KEEP}")

    assert failed(shell.run(up()))
    assert docker.log() == [f"rename {WEB} {KEEP}", f"rm -f {KEEP}", f"rename {WEB} {KEEP}"]
    assert docker.containers() == {WEB: "current running"}


def test_a_current_container_that_does_not_stop_runs_on_under_its_own_name_and_nothing_new_runs(docker, shell):
    docker.fail(f"stop {KEEP}", stderr="Error response from daemon: cannot stop container\n")

    ran = shell.run(up())

    assert failed(ran)
    assert docker.log() == [f"rename {WEB} {KEEP}", f"stop {KEEP}", f"rename {KEEP} {WEB}"]
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.message.endswith(f"{WEB} could not be stopped to be replaced: it runs on as before")


# -- dpl_first + dpl_switch: start-first ------------------------------------------------


def before(log, first_call, then):
    return log.index(first_call) < log.index(then)


def test_start_first_runs_the_new_container_beside_the_current_one_and_switches_once_it_started(docker, shell):
    ran = shell.run(first())

    assert ran.exited == 0 and ran.done == ["web"]
    log = docker.log(skip=("logs",))
    assert log[:3] == [f"run {NEXT}", f"container inspect {NEXT}", f"rename {WEB} {KEEP}"]
    assert sorted(log[3:]) == [f"rename {NEXT} {WEB}", f"stop {KEEP}"]  # at once
    assert docker.containers() == {WEB: "new1 running", KEEP: "current exited"}


def test_start_first_without_a_current_container_only_renames_the_new_one(shell):
    assert shell.run(first(keep="")).done == ["web"]
    assert shell.docker.log() == [f"run {NEXT}", f"rename {NEXT} {WEB}"]
    assert shell.docker.containers() == {WEB: "new1 running"}


def test_a_new_container_that_does_not_start_well_never_stops_the_current_one(docker, shell):
    crashes(docker, NEXT)

    ran = shell.run(first())

    assert failed(ran)
    assert docker.log() == [f"run {NEXT}", f"rm -f {NEXT}"]
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.details == ["starting", "panic: no config"]


def test_a_new_container_that_cannot_run_leaves_the_current_one_running(docker, shell):
    docker.fail("run *", exit=125)

    assert failed(shell.run(first()))
    assert docker.log() == [f"run {NEXT}", f"rm -f {NEXT}"]
    assert docker.containers() == {WEB: "current running"}


def test_a_leftover_next_container_makes_docker_run_fail_without_harm(docker, shell):
    docker.container(NEXT, id="leftover")

    assert failed(shell.run(first()))
    assert docker.containers() == {WEB: "current running"}  # the leftover is gone too


def test_when_the_new_container_cannot_take_the_name_the_current_one_comes_back(docker, shell):
    docker.fail(f"rename {NEXT} {WEB}")

    ran = shell.run(first())

    assert failed(ran)
    log = docker.log()
    assert log[-3:] == [f"rename {KEEP} {WEB}", f"start {WEB}", f"rm -f {NEXT}"]
    assert docker.containers() == {WEB: "current running"}


def test_when_the_current_container_does_not_stop_it_runs_on_and_the_new_one_goes(docker, shell):
    docker.fail(f"stop {KEEP}")

    ran = shell.run(first())

    assert failed(ran)
    log = docker.log()
    assert log[-4:] == [f"rename {WEB} {NEXT}", f"rename {KEEP} {WEB}", f"start {WEB}", f"rm -f {NEXT}"]
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.message == "Error response from daemon: stub failure"


def test_a_current_container_that_cannot_be_kept_leaves_it_running_and_removes_the_new_one(docker, shell):
    docker.fail(f"rename {WEB} {KEEP}")

    assert failed(shell.run(first()))
    assert f"stop {KEEP}" not in docker.log()
    assert docker.containers() == {WEB: "current running"}


def test_a_current_container_removed_meanwhile_is_simply_replaced(shell):
    assert shell.run(first()).done == ["web"]
    assert shell.docker.log()[-1] == f"rename {NEXT} {WEB}"
    assert shell.docker.containers() == {WEB: "new1 running"}


# -- dpl_again: start-first rollback ----------------------------------------------------


@pytest.fixture
def retained(docker):
    docker.container(RETAINED, id="retained", status="exited")
    return docker


def test_a_start_first_rollback_starts_the_retained_container_before_the_current_one_stops(retained, shell):
    ran = shell.run(again())

    assert ran.done == ["web"]
    log = retained.log()
    assert log[:2] == [f"start {RETAINED}", f"rename {WEB} {KEEP}"]
    assert sorted(log[2:]) == [f"rename {RETAINED} {WEB}", f"stop {KEEP}"]
    assert before(retained.log(skip=()), f"container inspect {RETAINED}", f"rename {WEB} {KEEP}")
    assert retained.containers() == {WEB: "retained running", KEEP: "current exited"}


def test_a_retained_container_that_does_not_start_well_is_stopped_again_and_kept(retained, shell):
    crashes(retained, RETAINED)

    assert failed(shell.run(again()))
    assert retained.log() == [f"start {RETAINED}", f"stop {RETAINED}"]
    assert retained.containers() == {WEB: "current running", RETAINED: "retained exited"}


def test_a_retained_container_that_cannot_start_leaves_everything_as_it_was(retained, shell):
    retained.fail(f"start {RETAINED}")

    assert failed(shell.run(again()))
    assert retained.containers() == {WEB: "current running", RETAINED: "retained exited"}


def test_a_start_first_rollback_whose_current_container_does_not_stop_puts_both_back(retained, shell):
    retained.fail(f"stop {KEEP}")

    assert failed(shell.run(again()))
    assert retained.log()[-4:] == [f"rename {WEB} {RETAINED}", f"rename {KEEP} {WEB}", f"start {WEB}",
                                   f"stop {RETAINED}"]
    assert retained.containers() == {WEB: "current running", RETAINED: "retained exited"}


# -- dpl_back: stop-first rollback ------------------------------------------------------


def test_a_stop_first_rollback_stops_the_current_container_then_starts_the_retained_one(retained, shell):
    ran = shell.run(back())

    assert ran.done == ["web"]
    assert retained.log() == [f"rename {WEB} {KEEP}", f"stop {KEEP}", f"rename {RETAINED} {WEB}", f"start {WEB}"]
    assert retained.containers() == {WEB: "retained running", KEEP: "current exited"}


def test_a_retained_container_that_does_not_start_well_gives_the_name_back_to_the_current_one(retained, shell):
    crashes(retained, WEB)

    ran = shell.run(back())

    assert failed(ran)
    assert retained.log()[-4:] == [f"stop {WEB}", f"rename {WEB} {RETAINED}", f"rename {KEEP} {WEB}", f"start {WEB}"]
    assert retained.containers() == {WEB: "current running", RETAINED: "retained exited"}
    assert ran.error.message == "the new container of web did not start well (exited, exit code 1)"


def test_a_retained_container_removed_meanwhile_brings_the_current_one_back(docker, shell):
    ran = shell.run(back())

    assert failed(ran)
    assert docker.containers() == {WEB: "current running"}
    assert ran.error.message.startswith(f"Error response from daemon: No such container: {RETAINED} | ")


def test_a_stop_first_rollback_that_cannot_keep_the_current_container_changes_nothing(retained, shell):
    retained.fail(f"rename {WEB} {KEEP}")

    assert failed(shell.run(back()))
    assert retained.containers() == {WEB: "current running", RETAINED: "retained exited"}


# -- dpl_down: a service removed --------------------------------------------------------

PS_WEB = "ps -a --filter label=deployer.instance=c1 --filter label=deployer.service=web --format *"


def test_removing_a_service_stops_each_of_its_containers_gracefully_then_removes_them(retained, shell):
    retained.answer(PS_WEB, "current \nretained \nreplica1 1\n")  # (a replica: not the service's one container)

    ran = shell.run(call("dpl_down", "web"))

    assert ran.done == ["web"]
    assert retained.log()[1:] == ["stop current retained", "rm -f current retained"]
    assert retained.containers() == {}


def test_removing_a_service_without_containers_is_done_at_once(shell):
    assert shell.run(call("dpl_down", "web")).done == ["web"]
    assert len(shell.docker.log()) == 1


def test_removing_one_replica_removes_its_containers_alone_and_marks_the_replica_done(docker, shell):
    docker.answer(PS_WEB, "current \nthird 3\nthirteenth 13\n")

    assert shell.run(call("dpl_down", "web", "3")).done == ["web.3"]
    assert docker.log()[1:] == ["stop third", "rm -f third"]


def test_a_replica_put_back_is_marked_back_and_said(shell):
    ran = shell.run(call("dpl_undone", "web.1"))

    assert ran.marks("back") == [("web.1",)] and "web.1 went back to its previous container" in ran.stderr


@pytest.mark.parametrize("broken", [PS_WEB, "rm -f *"])
def test_a_removal_docker_refuses_is_not_marked_done(docker, shell, broken):
    docker.answer(PS_WEB, "current \n")
    docker.fail(broken)

    assert failed(shell.run(call("dpl_down", "web")))


# -- dpl_turns/dpl_turned/dpl_turn: the replicas of a batch (deployer.rolling.batch) ------


def test_a_replica_of_a_batch_takes_its_turn_once_the_one_before_ended_and_learns_whether_it_was_done(shell):
    ran = shell.run('dpl_turns || exit 1\n'
                    '( sleep 0.3; dpl_turned web.1 0 ) & ( sleep 0.3; dpl_turned web.2 1 ) &\n'
                    'dpl_turn web.1 && echo "web.1 done"; dpl_turn web.2 || echo "web.2 not done"; wait')

    assert ran.exited == 0 and ran.stdout.count("web.1 done") == 1 and "web.2 not done" in ran.stdout
    assert not list((shell.instance_dir).glob("roll.*"))  # removed when the script ended
