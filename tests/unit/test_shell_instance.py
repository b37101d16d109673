"""What is done to an instance as a whole (``sh/instance.sh``): prune and destroy, run for
real against a stub docker. Containers go gracefully (``docker stop`` first: a database
writes what it writes at shutdown), and a built image's tag goes only when no container
uses its image, whatever tag the container was created from."""

import pytest

from deployer.remote.scripts import call
from stubdocker import BOUNDARY

PS_INSTANCE = "ps -a --filter label=deployer.instance=c1 --format *"
PS_ALL = "ps -aq --no-trunc"
USED = "inspect --format {{.Image}} *"
IMAGES = "images --no-trunc --filter label=deployer.instance=c1 --format *"
BUILT = (
    "deployer/c1/web:aaa-1 sha256:one\n"  # two tags of one image: a revert built it again
    "deployer/c1/web:ccc-1 sha256:one\n"
    "deployer/c1/web:bbb-1 sha256:two\n"
    "local/derived:latest sha256:three\n"  # built FROM one of them: the label, not the name
)


def sections(ran):
    """The script's ``pruned`` and ``images`` sections, as lists of names."""
    out, section = {}, None
    for line in ran.stdout.splitlines():
        if line.startswith(BOUNDARY):
            section = line.split()[1]
            out[section] = []
        elif section:
            out[section].append(line)
    return out


@pytest.fixture
def host(shell):
    """The stub with web's current container, a retained one, and the instance's builds; one
    container on the host (of any instance) uses the image tagged aaa-1 and ccc-1."""
    docker = shell.docker
    docker.container("c1.web", id="current")
    docker.container("c1.web.r1", id="retained", status="exited")
    docker.answer(PS_INSTANCE, "c1.web|web\nc1.web.r1|web\n")
    docker.answer(PS_ALL, "current\nretained\n")
    docker.answer(USED, "sha256:one\nsha256:one\n")
    docker.answer(IMAGES, BUILT)
    return docker


def prune(shell):
    return shell.run("dpl_prune || exit 1", uses=("instance",))


def test_prune_stops_a_retained_container_before_removing_it_and_keeps_the_current_one(host, shell):
    ran = prune(shell)

    assert ran.exited == 0
    assert host.log()[1:3] == ["stop c1.web.r1", "rm -f c1.web.r1"]
    assert host.containers() == {"c1.web": "current running"}
    assert sections(ran)["pruned"] == ["c1.web.r1"]


def test_prune_keeps_every_tag_of_an_image_a_container_uses_and_removes_the_others(host, shell):
    ran = prune(shell)

    assert [line for line in host.log() if line.startswith("rmi")] == ["rmi deployer/c1/web:bbb-1"]
    assert sections(ran)["images"] == ["deployer/c1/web:bbb-1"]


def test_prune_removes_no_image_when_it_cannot_tell_which_images_are_used(host, shell):
    host.fail(USED, stderr="Error: No such object: retained\n")

    ran = prune(shell)

    assert ran.exited == 1
    assert ran.error.message == "cannot tell which images the host's containers use"
    assert not [line for line in host.log() if line.startswith("rmi")]


def test_prune_of_a_host_without_containers_removes_every_build_of_the_instance(host, shell):
    host.answer(PS_INSTANCE, "")
    host.answer(PS_ALL, "")

    ran = prune(shell)

    assert sections(ran) == {"pruned": [], "images": ["deployer/c1/web:aaa-1", "deployer/c1/web:ccc-1",
                                                      "deployer/c1/web:bbb-1"]}


def destroy(shell):
    return shell.run(call("dpl_destroy", 0, 0, "ops@laptop") + " || exit 1", uses=("instance", "network", "discovery"))


def test_destroy_stops_the_containers_gracefully_before_removing_them(host, shell):
    host.answer("ps -aq --filter label=deployer.instance=c1", "current\nretained\n")
    host.answer(PS_ALL, "")  # once they are gone

    ran = destroy(shell)

    assert ran.exited == 0
    log = host.log()
    assert log.index("stop current retained") + 1 == log.index("rm -f current retained")
    assert host.containers() == {}


def test_destroy_with_volumes_removes_the_named_volumes_of_a_volume_driver_and_without_keeps_them(host, shell):
    host.answer("ps -aq --filter label=deployer.instance=c1", "current\n")
    host.answer("volume ls -q --filter label=deployer.instance=c1", "c1_db_data\nc1_db_etc\n")

    kept = destroy(shell)
    removed = shell.run(call("dpl_destroy", 1, 0, "ops@laptop") + " || exit 1", uses=("instance", "network", "discovery"))

    assert kept.exited == 0 and removed.exited == 0
    assert [line for line in host.log() if line.startswith("volume rm")] == ["volume rm c1_db_data c1_db_etc"]


def test_destroy_keeps_a_built_image_another_container_still_uses(host, shell):
    host.answer("ps -aq --filter label=deployer.instance=c1", "current\nretained\n")
    host.answer(PS_ALL, "someone-elses\n")
    host.answer(USED, "sha256:two\n")

    assert destroy(shell).exited == 0
    assert [line for line in host.log() if line.startswith("rmi")] == [
        "rmi deployer/c1/web:aaa-1 deployer/c1/web:ccc-1"
    ]


def test_an_instance_of_which_only_named_volumes_are_left_is_no_missing_one_to_destroy_volumes(host, shell):
    host.answer("volume ls -q --filter label=deployer.instance=c1", "c1_db_data\n")

    ran = shell.run(call("dpl_destroy", 1, 0, "ops@laptop") + " || exit 1", uses=("instance", "network", "discovery"))

    assert ran.exited == 0 and ran.marks("missing") == [] and "volume rm c1_db_data" in host.log()
