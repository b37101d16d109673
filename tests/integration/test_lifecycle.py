"""Living with an instance: rollback, redeploy, a failing release, locks, prune, retention."""

import fcntl
import getpass
import json
import signal
import socket

import pytest

from harness.poll import wait_for
from harness.processes import sessions_holding
from support import APP, containers_of, docker, env_of, finish, inspect, remove_instance

WHO = f"{getpass.getuser()}@{socket.gethostname()}"

# "slow" ignores SIGTERM and runs without an init, so replacing it waits out its stop
# timeout (10 s): a deploy that recreates it holds the instance's lock all that time.
SLOW = """\
slow:
  image: local/busybox
  init: false
  stop_timeout: 10
  cmd: [sh, -c, 'trap "" TERM; while true; do sleep 1; done']
worker:
  image: local/busybox
  cmd: sh -c 'while true; do sleep 3600; done'
"""


@pytest.fixture
def slow(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW)
    return path


def wait_until(condition, what, proc=None, timeout=60):
    """Poll until condition() holds; fail early if the background deployer proc ended first."""
    def ended():
        if proc is not None and proc.poll() is not None:
            code, out, err = finish(proc)
            return f"deployer exited ({code}) before {what}\n--- stdout\n{out}\n--- stderr\n{err}"

    wait_for(condition, what, timeout, gone=ended)


def running(name):
    result = docker("container", "inspect", "--format", "{{.State.Status}}", name)
    return result.returncode == 0 and result.stdout.strip() == "running"


def replacing_slow(instance, proc):
    """Wait until proc's deploy is stopping the old "slow" container (under the lock)."""
    wait_until(lambda: running(f"{instance}.slow.r1"), f"{instance}.slow being replaced", proc)


def history_rows(deployer_cli, instance):
    """`history` as {release: line}."""
    lines = deployer_cli("history", instance, check=True).stdout.splitlines()
    assert lines[0].split() == ["RELEASE", "TIME", "BY", "RESULT", "CHANGES"]
    return {int(line.split()[0]): line for line in lines[1:]}


def state_release(sshd, instance):
    return json.loads((sshd.state_dir / "instances" / instance / "state.json").read_text())["release"]


# -- rollback ----------------------------------------------------------------------------


def test_rollback_swaps_the_previous_release_back_in_and_history_records_it(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    first_web = inspect(f"{unique_instance}.web", "{{.Id}}")
    app.write_text(APP.replace("GREETING: hello", "GREETING: bye"))
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    assert env_of(f"{unique_instance}.web")["GREETING"] == "bye"

    result = deployer_cli("rollback", unique_instance, check=True)

    assert f"retained container {unique_instance}.web.r1 started again" in result.stdout
    assert "release 3" in result.stdout
    assert env_of(f"{unique_instance}.web")["GREETING"] == "hello"
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == first_web
    assert running(f"{unique_instance}.web") and running(f"{unique_instance}.worker")
    rows = history_rows(deployer_cli, unique_instance)
    assert sorted(rows) == [1, 2, 3]
    assert all(" ok " in line for line in rows.values())
    assert "rollback to release 1" in rows[3] and "rollback" not in rows[2]

    result = deployer_cli("rollback", unique_instance, "--to", 2, check=True)

    assert "release 4" in result.stdout
    assert env_of(f"{unique_instance}.web")["GREETING"] == "bye"
    assert "rollback to release 2" in history_rows(deployer_cli, unique_instance)[4]


ONCE = """\
job:
  image: local/busybox
  cmd: sh -c 'if [ -e /ran ]; then exit 3; fi; touch /ran; exec sleep 3600'
  env: {ROUND: one}
"""


def events(instance, since, until):
    """What Docker did to the instance's containers between two times: (action, name)."""
    result = docker("events", "--since", since, "--until", until, "--filter", f"label=deployer.instance={instance}",
                    "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert result.returncode == 0, result.stderr
    return [tuple(line.split(" ", 1)) for line in result.stdout.splitlines()]


def test_rollback_of_a_start_first_service_starts_the_retained_container_before_stopping_the_current(
    deployer_cli, tmp_path, unique_instance
):
    template = tmp_path / "job.yaml"
    again = ONCE.replace("if [ -e /ran ]; then exit 3; fi; touch /ran; exec sleep 3600", "exec sleep 3600")
    template.write_text(again)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    template.write_text(again.replace("ROUND: one", "ROUND: two"))
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    since = docker("system", "info", "--format", "{{.SystemTime}}").stdout.strip()

    deployer_cli("rollback", unique_instance, check=True)

    until = docker("system", "info", "--format", "{{.SystemTime}}").stdout.strip()
    actions = events(unique_instance, since, until)
    job = f"{unique_instance}.job"
    assert ("start", f"{job}.r1") in actions and ("die", f"{job}.r2") in actions, actions
    assert actions.index(("start", f"{job}.r1")) < actions.index(("die", f"{job}.r2")), actions
    assert env_of(job)["ROUND"] == "one" and running(job)


def test_a_rollback_whose_retained_container_fails_to_start_leaves_the_current_one_running_untouched(
    deployer_cli, tmp_path, unique_instance
):
    template = tmp_path / "job.yaml"
    template.write_text(ONCE)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    template.write_text(ONCE.replace("ROUND: one", "ROUND: two"))
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    job = f"{unique_instance}.job"
    started = inspect(job, "{{.Id}} {{.State.StartedAt}}")

    result = deployer_cli("rollback", unique_instance)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the new container of job did not start well (" in result.stderr  # restarted, or exited
    assert inspect(job, "{{.Id}} {{.State.StartedAt}}") == started and running(job)  # never stopped
    assert env_of(job)["ROUND"] == "two"
    assert inspect(f"{job}.r1", "{{.State.Status}}") == "exited"  # still retained, for another try
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1, 2]


def test_rollback_to_an_unknown_release_names_the_known_ones_and_changes_nothing(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    deployer_cli("deploy", app, "--instance", unique_instance, "--force", check=True)
    web = inspect(f"{unique_instance}.web", "{{.Id}}")

    result = deployer_cli("rollback", unique_instance, "--to", 99)

    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "no release 99" in result.stderr and "known: 1, 2" in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == web
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1, 2]


def test_rollback_after_prune_recreates_the_release_from_its_recorded_spec(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    app.write_text(APP.replace("GREETING: hello", "GREETING: bye"))
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    pruned = deployer_cli("prune", unique_instance, check=True)
    assert f"{unique_instance}.web.r1" in pruned.stdout
    assert containers_of(unique_instance) == {f"{unique_instance}.web", f"{unique_instance}.worker"}

    result = deployer_cli("rollback", unique_instance, check=True)

    assert "retained container" not in result.stdout and "release 3" in result.stdout
    assert env_of(f"{unique_instance}.web")["GREETING"] == "hello"
    assert running(f"{unique_instance}.web")
    assert "rollback to release 1" in history_rows(deployer_cli, unique_instance)[3]


@pytest.fixture
def versions(unique_instance):
    """A tag local/<instance> on the first of two distinct images: (tag, [id1, id2])."""
    tag = f"local/{unique_instance}"
    ids = []
    for version in ("1", "2"):
        created = docker("create", "local/busybox", "true")
        assert created.returncode == 0, created.stderr
        committed = docker("commit", "--change", f"LABEL version={version}", created.stdout.strip())
        assert committed.returncode == 0, committed.stderr
        docker("rm", created.stdout.strip())
        ids.append(committed.stdout.strip())
    assert docker("tag", ids[0], tag).returncode == 0
    yield tag, ids
    remove_instance(unique_instance)
    docker("rmi", "-f", tag, *ids)


def versioned(tmp_path, tag):
    path = tmp_path / "versioned.yaml"
    path.write_text(f"web:\n  image: {tag}\n  cmd: sh -c 'while true; do sleep 3600; done'\n")
    return path


def test_rollback_brings_back_the_image_the_release_ran(deployer_cli, unique_instance, versions, tmp_path):
    tag, (v1, v2) = versions
    template = versioned(tmp_path, tag)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    assert docker("tag", v2, tag).returncode == 0
    update = deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    assert f"image {tag} updated" in update.stdout
    assert inspect(f"{unique_instance}.web", "{{.Image}}") == v2

    deployer_cli("rollback", unique_instance, check=True)

    assert inspect(f"{unique_instance}.web", "{{.Image}}") == v1
    assert running(f"{unique_instance}.web")


def test_rollback_whose_image_is_gone_says_which_and_changes_nothing(deployer_cli, unique_instance, versions, tmp_path):
    tag, (v1, v2) = versions
    template = versioned(tmp_path, tag)
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    assert docker("tag", v2, tag).returncode == 0
    deployer_cli("deploy", template, "--instance", unique_instance, check=True)
    deployer_cli("prune", unique_instance, check=True)
    removed = docker("rmi", v1)
    assert removed.returncode == 0, removed.stderr
    web = inspect(f"{unique_instance}.web", "{{.Id}}")

    result = deployer_cli("rollback", unique_instance)

    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert v1 in result.stderr and "no longer on the host" in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == web and running(f"{unique_instance}.web")
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1, 2]


# -- a failing release --------------------------------------------------------------------


def test_a_new_container_that_cannot_start_leaves_the_old_one_running_and_the_state_as_it_was(
    deployer_cli, app, unique_instance
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    web = inspect(f"{unique_instance}.web", "{{.Id}}")
    app.write_text(APP.replace('cmd: [httpd, -f, -p, "8080", -h, /www]', "cmd: [no-such-binary]"))

    result = deployer_cli("deploy", app, "--instance", unique_instance)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and "'web'" in lines[0], result.stderr
    logs = [line for line in lines[1:] if line.startswith("  | ")]
    assert any("no-such-binary" in line for line in logs), result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == web
    assert running(f"{unique_instance}.web") and running(f"{unique_instance}.worker")
    assert containers_of(unique_instance) == {f"{unique_instance}.web", f"{unique_instance}.worker"}
    status = deployer_cli("status", unique_instance, check=True).stdout
    assert "release 1," in status.splitlines()[0]
    rows = history_rows(deployer_cli, unique_instance)
    assert 2 not in rows or " ok " not in rows[2]


def test_with_min_uptime_a_new_container_that_crashes_a_second_after_starting_is_not_accepted(
    deployer_cli, app, unique_instance
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    worker = inspect(f"{unique_instance}.worker", "{{.Id}}")
    app.write_text(APP.replace("cmd: sh -c 'while true; do sleep 3600; done'",
                               "cmd: sh -c 'echo cannot reach the database; sleep 1; exit 3'"))

    result = deployer_cli("deploy", app, "--instance", unique_instance, env={"FABRIC_DEPLOYER_MIN_UPTIME": "2"})

    assert result.returncode == 1, result.stdout + result.stderr
    assert "'worker'" in result.stderr.splitlines()[0]
    assert "  | cannot reach the database" in result.stderr.splitlines()
    assert inspect(f"{unique_instance}.worker", "{{.Id}}") == worker and running(f"{unique_instance}.worker")
    assert "release 1," in deployer_cli("status", unique_instance, check=True).stdout.splitlines()[0]


# -- redeploy -----------------------------------------------------------------------------


def test_redeploy_reapplies_the_template_the_host_holds_from_anywhere(deployer_cli, app, unique_instance, tmp_path):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    web = inspect(f"{unique_instance}.web", "{{.Id}}")
    app.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    again = deployer_cli("redeploy", unique_instance, check=True, cwd=elsewhere)

    assert "is up to date (release 1); nothing was changed" in again.stdout
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == web

    forced = deployer_cli("redeploy", unique_instance, "--force", check=True, cwd=elsewhere)

    assert "release 2, 2 services changed" in forced.stdout
    assert inspect(f"{unique_instance}.web", "{{.Id}}") != web
    assert env_of(f"{unique_instance}.web")["GREETING"] == "hello"
    assert running(f"{unique_instance}.web") and running(f"{unique_instance}.worker")


# -- locks --------------------------------------------------------------------------------


def test_a_second_deploy_of_a_locked_instance_fails_naming_the_holder(
    deployer_cli, slow, unique_instance, deployer_started
):
    deployer_cli("deploy", slow, "--instance", unique_instance, check=True)
    first = deployer_started("deploy", slow, "--instance", unique_instance, "--force")
    replacing_slow(unique_instance, first)

    plan = deployer_cli("deploy", slow, "--instance", unique_instance, "--dry-run", "--lock-wait", 0)
    second = deployer_cli("deploy", slow, "--instance", unique_instance, "--force", "--lock-wait", 0)

    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stderr.startswith("error: ") and "Traceback" not in second.stderr
    assert f"locked by {WHO} since " in second.stderr
    # Still locked after the dry run had finished: so reading the plan never needed the lock.
    assert plan.returncode == 0 and "dry run: " in plan.stdout, plan.stderr
    code, out, err = finish(first)
    assert code == 0, err
    assert "release 2" in out
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1, 2]


def test_a_second_deploy_with_a_lock_wait_waits_its_turn_and_builds_on_the_first(
    deployer_cli, slow, unique_instance, deployer_started, sshd
):
    deployer_cli("deploy", slow, "--instance", unique_instance, check=True)
    first = deployer_started("deploy", slow, "--instance", unique_instance, "--force")
    replacing_slow(unique_instance, first)
    changed = slow.with_name("changed.yaml")
    changed.write_text(SLOW.replace("worker:\n", "worker:\n  env: {ROUND: two}\n"))

    second = deployer_cli("deploy", changed, "--instance", unique_instance, "--lock-wait", 60, check=True)

    code, out, err = finish(first)
    assert code == 0, err
    assert "release 2, 2 services changed" in out
    assert "release 3, 1 service changed" in second.stdout
    rows = history_rows(deployer_cli, unique_instance)
    assert sorted(rows) == [1, 2, 3] and all(" ok " in line for line in rows.values())
    assert state_release(sshd, unique_instance) == 3
    assert env_of(f"{unique_instance}.worker")["ROUND"] == "two"
    assert running(f"{unique_instance}.slow") and running(f"{unique_instance}.worker")


def test_deploys_of_two_instances_at_once_do_not_wait_for_each_other(
    deployer_cli, slow, app, unique_instance, other_instance, deployer_started
):
    deployer_cli("deploy", slow, "--instance", unique_instance, check=True)
    first = deployer_started("deploy", slow, "--instance", unique_instance, "--force")
    replacing_slow(unique_instance, first)

    other = deployer_cli("deploy", app, "--instance", other_instance, "--lock-wait", 0, check=True)

    assert f"deployed {other_instance}" in other.stdout
    code, out, err = finish(first)
    assert code == 0, err
    assert "release 2" in out
    assert running(f"{other_instance}.web") and running(f"{unique_instance}.slow")


def test_a_client_killed_mid_deploy_leaves_no_lock_and_the_host_finishes_the_release(
    deployer_cli, slow, unique_instance, deployer_started, sshd
):
    deployer_cli("deploy", slow, "--instance", unique_instance, check=True)
    first = deployer_started("deploy", slow, "--instance", unique_instance, "--force")
    replacing_slow(unique_instance, first)

    first.send_signal(signal.SIGKILL)
    first.communicate()

    # The host's script goes on after losing its client; the next deploy waits for it.
    after = deployer_cli("deploy", slow, "--instance", unique_instance, "--lock-wait", 30, check=True)
    assert "is up to date (release 2)" in after.stdout
    again = deployer_cli("deploy", slow, "--instance", unique_instance, "--lock-wait", 0, check=True)
    assert "is up to date (release 2)" in again.stdout
    rows = history_rows(deployer_cli, unique_instance)
    assert sorted(rows) == [1, 2] and " ok " in rows[2]
    assert state_release(sshd, unique_instance) == 2
    assert running(f"{unique_instance}.slow") and running(f"{unique_instance}.worker")
    assert inspect(f"{unique_instance}.slow", '{{index .Config.Labels "deployer.release"}}') == "2"
    status = deployer_cli("status", unique_instance, check=True).stdout.splitlines()
    assert "release 2," in status[0]
    rows = {line.split()[1]: line.split()[2] for line in status[2:] if not line.startswith("2 retained")}
    assert rows == {f"{unique_instance}.slow": "running", f"{unique_instance}.worker": "running"}
    assert status[-1].startswith(f"2 retained containers for rollback ({unique_instance}.")


def lock_sessions(sshd, instance):
    """The session ids of the host's processes that have the instance's lock file open:
    one per deploy holding or waiting for the lock (each SSH session is its own)."""
    return sessions_holding(sshd.state_dir / "instances" / instance / "lock")


def test_a_client_killed_while_waiting_for_the_lock_leaves_nothing_waiting_on_the_host(
    deployer_cli, slow, unique_instance, deployer_started, sshd
):
    deployer_cli("deploy", slow, "--instance", unique_instance, check=True)
    first = deployer_started("deploy", slow, "--instance", unique_instance, "--force")
    replacing_slow(unique_instance, first)
    holder = lock_sessions(sshd, unique_instance)
    assert len(holder) == 1
    waiter = deployer_started("deploy", slow, "--instance", unique_instance, "--force", "--lock-wait", 600)
    wait_until(lambda: lock_sessions(sshd, unique_instance) - holder, "second deploy waiting for the lock", waiter)
    waiting = lock_sessions(sshd, unique_instance) - holder

    waiter.send_signal(signal.SIGKILL)
    waiter.communicate()

    wait_until(lambda: not lock_sessions(sshd, unique_instance) & waiting, "end of the killed client's waiting")
    # ...while the first deploy still held the lock: the waiter did not wait its turn to die.
    assert running(f"{unique_instance}.slow.r1"), "the waiting process only ended once the lock was free"
    assert lock_sessions(sshd, unique_instance) == holder
    code, out, err = finish(first)
    assert code == 0, err
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1, 2]
    assert lock_sessions(sshd, unique_instance) == set()


def test_ctrl_c_while_waiting_for_the_lock_says_what_it_left_and_exits_130(
    deployer_cli, app, unique_instance, deployer_started, sshd
):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    mine = lock_sessions(sshd, unique_instance)  # none yet: the lock file is only open while held
    with open(sshd.state_dir / "instances" / unique_instance / "lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another deploy would
        mine = lock_sessions(sshd, unique_instance) - mine
        waiter = deployer_started("deploy", app, "--instance", unique_instance, "--force", "--lock-wait", 600)
        wait_until(lambda: lock_sessions(sshd, unique_instance) - mine, "the deploy waiting for the lock", waiter)

        waiter.send_signal(signal.SIGINT)
        code, out, err = finish(waiter)

        assert code == 130, err
        assert "error: interrupted: a deploy whose plan had reached its host runs to its end there" in err
        assert "Traceback" not in err
        wait_until(lambda: lock_sessions(sshd, unique_instance) == mine, "the host's waiting script to end")
    assert sorted(history_rows(deployer_cli, unique_instance)) == [1]  # nothing was changed


# -- prune and retention ------------------------------------------------------------------


def test_prune_removes_only_this_instances_retained_containers(
    deployer_cli, app, unique_instance, other_instance, sshd
):
    for name in (unique_instance, other_instance):
        deployer_cli("deploy", app, "--instance", name, check=True)
        deployer_cli("deploy", app, "--instance", name, "--force", check=True)
    others = containers_of(other_instance)
    assert others == {f"{other_instance}.{s}{r}" for s in ("web", "worker") for r in ("", ".r1")}

    result = deployer_cli("prune", unique_instance, check=True)

    assert f"pruned 2 retained containers of {unique_instance} on {sshd.target}" in result.stdout
    assert f"{unique_instance}.web.r1" in result.stdout and f"{unique_instance}.worker.r1" in result.stdout
    assert containers_of(unique_instance) == {f"{unique_instance}.web", f"{unique_instance}.worker"}
    assert containers_of(other_instance) == others
    assert running(f"{unique_instance}.web") and running(f"{other_instance}.web")
    again = deployer_cli("prune", unique_instance, check=True)
    assert f"nothing to prune for {unique_instance}" in again.stdout


def test_five_deploys_keep_the_three_newest_replaced_containers_per_service(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    for _ in range(4):
        deployer_cli("deploy", app, "--instance", unique_instance, "--force", check=True)

    expected = {f"{unique_instance}.{s}{r}" for s in ("web", "worker") for r in ("", ".r2", ".r3", ".r4")}
    assert containers_of(unique_instance) == expected
    assert inspect(f"{unique_instance}.web", '{{index .Config.Labels "deployer.release"}}') == "5"


def test_the_retain_setting_from_fabric_yaml_keeps_that_many(deployer_cli, app, unique_instance, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "fabric.yaml").write_text("deployer:\n  retain: 1\n")
    for force in ((), ("--force",), ("--force",)):
        deployer_cli("deploy", app, "--instance", unique_instance, *force, check=True, cwd=project)

    expected = {f"{unique_instance}.{s}{r}" for s in ("web", "worker") for r in ("", ".r2")}
    assert containers_of(unique_instance) == expected


def test_the_retain_setting_from_the_environment_keeps_that_many(deployer_cli, app, unique_instance):
    env = {"FABRIC_DEPLOYER_RETAIN": "1"}
    for force in ((), ("--force",), ("--force",)):
        result = deployer_cli("deploy", app, "--instance", unique_instance, *force, env=env)
        assert result.returncode == 0, result.stderr

    expected = {f"{unique_instance}.{s}{r}" for s in ("web", "worker") for r in ("", ".r2")}
    assert containers_of(unique_instance) == expected


def test_the_history_keeps_the_newest_releases_the_setting_says(deployer_cli, app, unique_instance, sshd):
    env = {"FABRIC_DEPLOYER_HISTORY": "2"}
    for force in ((), ("--force",), ("--force",), ("--force",)):
        deployer_cli("deploy", app, "--instance", unique_instance, *force, env=env, check=True)

    assert sorted(history_rows(deployer_cli, unique_instance)) == [3, 4]
    history = sshd.state_dir / "instances" / unique_instance / "history.jsonl"
    assert oct(history.stat().st_mode & 0o777) == "0o600"
    gone = deployer_cli("rollback", unique_instance, "--to", 1)
    assert gone.returncode == 1 and "no release 1 in the history (known: 3, 4)" in gone.stderr
    deployer_cli("rollback", unique_instance, "--to", 3, env=env, check=True)  # still there


def test_the_history_keeps_each_distinct_template_once_and_only_those_its_releases_name(
    deployer_cli, app, unique_instance, sshd
):
    env = {"FABRIC_DEPLOYER_HISTORY": "3"}
    texts = [APP, APP, APP.replace("GREETING: hello", "GREETING: two"), APP.replace("GREETING: hello", "GREETING: 3")]
    for text in texts:
        app.write_text(text)
        deployer_cli("deploy", app, "--instance", unique_instance, "--force", env=env, check=True)

    directory = sshd.state_dir / "instances" / unique_instance
    lines = [json.loads(line) for line in (directory / "history.jsonl").read_text().splitlines()]
    assert [line["release"] for line in lines] == [2, 3, 4] and all("template_text" not in line for line in lines)
    kept = {path.read_text() for path in (directory / "templates").iterdir()}
    assert kept == {APP, texts[2], texts[3]}  # release 1's template is release 2's too: still named
    deployer_cli("rollback", unique_instance, "--to", 2, env=env, check=True)
    assert env_of(f"{unique_instance}.web")["GREETING"] == "hello"


# -- status -------------------------------------------------------------------------------


def test_status_shows_a_worker_stopped_by_hand_as_exited(deployer_cli, app, unique_instance):
    deployer_cli("deploy", app, "--instance", unique_instance, check=True)
    assert docker("stop", f"{unique_instance}.worker").returncode == 0

    result = deployer_cli("status", unique_instance, check=True)

    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["worker"][1:3] == [f"{unique_instance}.worker", "exited"]
    assert rows["web"][1:3] == [f"{unique_instance}.web", "running"]
