"""The shell library every host script has (``sh/library.sh``), run for real: files
written atomically, the instance's lock, one docker inspect, volume directories, pulls,
and what -v notes."""

import stat
import subprocess

import pytest

from deployer.remote.scripts import call, script
from stubdocker import BOUNDARY

HOSTILE = "it's \"quoted\" $(not run) `nor this`\nsecond line\\n, no final newline"


def put(path, content):
    return call("dpl_put", path, content)


# -- dpl_put: atomic writes --------------------------------------------------------------


def test_a_file_is_written_exactly_and_readable_by_its_owner_only(shell, tmp_path):
    path = tmp_path / "state.json"

    assert shell.run(put(path, HOSTILE)).exited == 0
    assert path.read_text() == HOSTILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_previous_file_is_kept_beside_the_new_one(shell, tmp_path):
    path = tmp_path / "state.json"

    shell.run(put(path, "one") + "\n" + put(path, "two"))

    assert (path.read_text(), (tmp_path / "state.json.prev").read_text()) == ("two", "one")


def test_a_file_that_cannot_be_synced_is_not_written_and_leaves_no_temporary_file(shell, tmp_path):
    path = tmp_path / "state.json"
    path.write_text("before")
    shell.docker.tool("sync", exit=1)

    ran = shell.run(put(path, "after"))

    assert ran.exited == 1
    assert ran.error.message == f"could not write {path}"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["state.json"]
    assert path.read_text() == "before"


def test_a_file_in_a_missing_directory_is_an_error(shell, tmp_path):
    ran = shell.run(put(tmp_path / "gone" / "state.json", "x"))

    assert ran.exited == 1
    assert ran.error.message.endswith(f"Directory nonexistent | could not write {tmp_path}/gone/state.json")


def test_with_v_a_written_file_is_noted_by_name_and_size_never_its_content(shell, tmp_path):
    ran = shell.run(put(tmp_path / "secrets.env", "PW=hunter2\n"), verbose=True)

    assert ran.marks("put") == [(f"{tmp_path}/secrets.env", "11")]
    assert "hunter2" not in repr(ran.heard) + ran.stderr


# -- dpl_lock: one deploy of an instance at a time ----------------------------------------

LOCK = 'dpl_lock "$D" {} {} || exit 1'


@pytest.fixture
def holder(shell):
    """A script holding the instance's lock (alice's) until the test ends it."""
    session = shell.start(LOCK.format(0, "alice") + "\ndpl_mark held\ncat <&3 >/dev/null", uses=())
    assert session.read_until(f"{BOUNDARY} held") is not None
    yield session
    session.finish()


def test_the_lock_says_who_holds_it_since_when(holder, shell):
    info = (shell.instance_dir / "lock.info").read_text()

    assert info.startswith("alice since 20") and info.endswith("Z\n")
    assert stat.S_IMODE(shell.instance_dir.stat().st_mode) == 0o700


def test_a_second_deployer_that_may_not_wait_is_refused_naming_the_holder(holder, shell):
    info = (shell.instance_dir / "lock.info").read_text().strip()

    ran = shell.run(LOCK.format(0, "bob"), uses=())

    assert ran.exited == 1
    assert ran.error.message == f"locked by {info} (waited 0 s; --lock-wait waits longer)"


def test_a_second_deployer_waits_saying_for_whom_and_gets_the_lock_when_the_holder_ends(holder, shell):
    info = (shell.instance_dir / "lock.info").read_text().strip()
    waiter = shell.start(LOCK.format(30, "bob") + "\ndpl_mark got-it\ncat <&3 >/dev/null", uses=())

    assert waiter.read_until(f"{BOUNDARY} waiting 0 c1 {info}") is not None
    holder.finish()  # its process ends: flock lets go, nobody unlocked anything
    assert waiter.read_until(f"{BOUNDARY} got-it") is not None
    assert (shell.instance_dir / "lock.info").read_text().startswith("bob since ")
    assert waiter.finish().exited == 0


def test_a_second_deployer_gives_up_after_waiting_as_long_as_it_may(holder, shell):
    ran = shell.run(LOCK.format(1, "bob"), uses=())

    assert ran.exited == 1
    assert [fields[:2] for fields in ran.marks("waiting")] == [("0", "c1")]
    assert ran.error.message.endswith("(waited 1 s; --lock-wait waits longer)")


def test_an_instance_without_state_keeps_no_lock_files_once_the_script_ends(shell):
    ran = shell.run(LOCK.format(0, "alice") + "\nexit 1", uses=())  # a first deploy that failed

    assert ran.exited == 1
    assert not shell.instance_dir.exists()


def test_an_instance_with_state_keeps_its_lock_file(shell):
    shell.instance_dir.mkdir(parents=True)
    (shell.instance_dir / "state.json").write_text("{}")

    assert shell.run(LOCK.format(0, "alice"), uses=()).exited == 0
    assert sorted(p.name for p in shell.instance_dir.iterdir()) == ["lock", "lock.info", "state.json"]


def test_a_waiter_whose_lock_file_went_takes_the_lock_on_the_new_one_and_holds_it(holder, shell):
    info = (shell.instance_dir / "lock.info").read_text().strip()
    waiter = shell.start(LOCK.format(30, "bob") + "\ndpl_mark got-it\ncat <&3 >/dev/null", uses=())
    assert waiter.read_until(f"{BOUNDARY} waiting 0 c1 {info}") is not None

    holder.finish()  # no state: its lock file goes as it ends, while bob waits on it
    assert waiter.read_until(f"{BOUNDARY} got-it") is not None
    third = shell.run(LOCK.format(0, "carol"), uses=())

    assert third.exited == 1 and third.error.message.startswith("locked by bob since ")
    waiter.finish()


# -- dpl_inspect, dpl_within, dpl_pull --------------------------------------------------

PS = "ps -aq --no-trunc --filter label=deployer.instance=c1"


def test_an_instance_without_containers_or_images_to_look_at_is_an_empty_list_at_once(shell):
    ran = shell.run(call("dpl_inspect", "c1"))

    assert ran.stdout == "[]\n"
    assert shell.docker.log() == [PS]


def test_the_containers_and_the_images_are_inspected_in_one_call(shell):
    shell.docker.answer(PS, "id1\nid2\n")
    shell.docker.answer("inspect *", '[{"Id": "x"}]\n', exit=1)  # an image is missing: still JSON

    ran = shell.run(call("dpl_inspect", "c1", "redis:7", "team/app"))

    assert (ran.exited, ran.stdout) == (0, '[{"Id": "x"}]\n')
    assert shell.docker.log() == [PS, "inspect id1 id2 redis:7 team/app"]


def test_an_engine_that_does_not_answer_is_an_error(shell):
    shell.docker.fail("ps *", stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")

    ran = shell.run(call("dpl_inspect", "c1"))

    assert ran.exited == 1
    assert ran.error.message == "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."


def test_volume_directories_inside_the_instances_own_are_accepted(shell):
    inside = shell.volume_dir / "c1" / "db"
    inside.mkdir(parents=True)

    assert shell.run(call("dpl_within", shell.volume_dir / "c1", inside), uses=("guard",)).exited == 0


def test_a_volume_directory_leading_outside_the_instances_own_is_refused(shell, tmp_path):
    top = shell.volume_dir / "c1"
    top.mkdir(parents=True)
    (top / "db").symlink_to(tmp_path)

    ran = shell.run(call("dpl_within", top, top / "db"), uses=("guard",))

    assert ran.exited == 1
    assert ran.error.message == f"volume directory {top}/db leads outside {top} (a symlink?): refused"


def test_a_pull_says_so_first_and_a_failed_one_says_why(shell):
    shell.docker.fail("pull *", stderr="manifest unknown\n")

    ran = shell.run(call("dpl_pull", "team/app:9"))

    assert ran.marks("pulling") == [("team/app:9",)]
    assert ran.error.message == "cannot pull team/app:9: manifest unknown"


# -- -v: each docker command noted before it runs -----------------------------------------


def test_with_v_each_docker_command_is_noted_with_its_exact_arguments(shell):
    shell.docker.container("c1.web")

    ran = shell.run(call("dpl_away", "c1.web", "c1.web.r2") + "\ndocker ps --format '{{.Names}} x'", verbose=True)

    assert ran.marks("run") == [("docker", "rename", "c1.web", "c1.web.r2"),
                                ("docker", "ps", "--format", "{{.Names}} x")]
    assert shell.docker.log() == ["rename c1.web c1.web.r2", "ps --format {{.Names}} x"]


def test_without_v_nothing_is_noted(shell):
    ran = shell.run("docker ps")

    assert [kind for kind, *_ in ran.heard] == ["end"]


def test_what_the_client_sends_after_the_script_is_never_run_as_commands(tmp_path):
    marker = tmp_path / "ran"
    sent = script(BOUNDARY, "true") + f"touch {marker}\n"  # a build's tar a step left unread, say

    done = subprocess.run(["sh", "-s"], input=sent.encode(), capture_output=True, timeout=30)

    assert done.returncode == 0 and not marker.exists()
