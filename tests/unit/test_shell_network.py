"""The networks' shell (``sh/replace.sh``: dpl_run, dpl_network; ``sh/instance.sh``:
dpl_networks_rm), run for real against a stub docker: a container joining several
networks never runs without them, a network another deploy made meanwhile is no error,
and destroy leaves no network behind."""

from deployer.remote.scripts import call

RUN = ("-d", "--name", "c1.web", "--network", "deployer-c1", "team/app")


def test_a_container_on_one_network_is_just_run(shell):
    ran = shell.run(call("dpl_run", *RUN))

    assert ran.exited == 0 and shell.docker.log() == ["run c1.web"]


def test_a_container_joining_more_networks_is_created_connected_then_started(shell):
    ran = shell.run(call("dpl_run", "--dpl-join", "deployer-c1.web=web.c1", "--dpl-join", "deployer-shop.db=", *RUN))

    assert ran.exited == 0
    assert shell.docker.log() == [
        "create c1.web",
        "network connect --alias web.c1 deployer-c1.web new1",
        "network connect deployer-shop.db new1",
        "start new1",
    ]
    assert shell.docker.containers() == {"c1.web": "new1 running"}


def test_a_container_that_cannot_join_a_network_is_never_started(shell):
    shell.docker.fail("network connect *", stderr="Error response from daemon: network deployer-shop.db not found\n")

    ran = shell.run(call("dpl_run", "--dpl-join", "deployer-shop.db=", *RUN))

    assert ran.exited == 1 and "start new1" not in shell.docker.log() and shell.docker.containers() == {}
    assert "network deployer-shop.db not found" in ran.stderr


def test_a_network_is_created_with_its_label(shell):
    ran = shell.run(call("dpl_network", "--label", "deployer.instance=c1", "deployer-c1"))

    assert ran.exited == 0 and shell.docker.log() == ["network create --label deployer.instance=c1 deployer-c1"]


def test_a_network_another_deploy_created_meanwhile_is_no_error(shell):
    shell.docker.fail("network create *", stderr="Error response from daemon: network with name deployer-c1 already exists\n")

    assert shell.run(call("dpl_network", "--label", "deployer.instance=c1", "deployer-c1")).exited == 0


def test_a_network_that_cannot_be_created_fails_the_deploy_saying_why(shell):
    shell.docker.fail("network create *", stderr="Error response from daemon: plugin not found\n")
    shell.docker.fail("network inspect *")

    ran = shell.run(call("dpl_network", "--label", "deployer.instance=c1", "deployer-c1"))

    assert ran.exited == 1
    assert "cannot create network deployer-c1: Error response from daemon: plugin not found" in ran.stderr


POOLS_USED_UP = ("Error response from daemon: could not find an available, non-overlapping IPv4 address pool "
                 "among the defaults to assign to the network\n")


def subnets_script(*create):
    return "DPL_SUBNETS=10.9.0.0/16\n" + call("dpl_network", *create, "--label", "deployer.instance=c1", "deployer-c1")


def test_once_dockers_pools_are_used_up_a_network_takes_the_first_free_subnet_of_the_setting(shell):
    shell.docker.fail("network create --label *", stderr=POOLS_USED_UP)
    shell.docker.fail("network inspect deployer-c1")
    shell.docker.answer("network ls -q", "n1\nn2\n")
    shell.docker.answer("network inspect --format * n1 n2", "172.17.0.0/16 \n10.9.0.0/24 \n")
    shell.docker.fail("network create --subnet 10.9.1.0/24 *", stderr="Error response from daemon: Pool overlaps\n")
    (shell.docker.bin / "ip").write_text("#!/bin/sh\necho 'default via 192.0.2.1 dev eth0'\n"
                                         "echo '10.9.2.0/25 dev eth1 proto kernel scope link'\n")  # the host's LAN
    (shell.docker.bin / "ip").chmod(0o755)

    ran = shell.run(subnets_script())

    assert ran.exited == 0, ran.stderr
    assert [line for line in shell.docker.log() if line.startswith("network create")] == [
        "network create --label deployer.instance=c1 deployer-c1",
        "network create --subnet 10.9.1.0/24 --label deployer.instance=c1 deployer-c1",  # taken meanwhile
        "network create --subnet 10.9.3.0/24 --label deployer.instance=c1 deployer-c1",
    ]


def test_when_the_settings_subnets_are_used_up_too_the_error_names_the_setting(shell):
    shell.docker.fail("network create *", stderr=POOLS_USED_UP)
    shell.docker.fail("network inspect deployer-c1")
    shell.docker.answer("network ls -q", "n1\n")
    shell.docker.answer("network inspect --format * n1", "".join(f"10.9.{n}.0/24 " for n in range(256)) + "\n")

    ran = shell.run(subnets_script())

    assert ran.exited == 1
    assert ("cannot create network deployer-c1: Docker's address pools and deployer.subnets (10.9.0.0/16) are "
            "used up") in ran.stderr


def test_destroy_disconnects_what_still_joins_the_instances_networks_then_removes_them(shell):
    shell.docker.answer("network ls -q --filter label=deployer.instance=c1", "n1\nn2\n")
    shell.docker.answer("network inspect --format * n1", "other1 \n")

    ran = shell.run('I=c1\ndpl_networks_rm || exit 1', uses=("network",))

    assert ran.exited == 0
    assert [line for line in shell.docker.log() if not line.startswith("network inspect")] == [
        "network ls -q --filter label=deployer.instance=c1",
        "network disconnect -f n1 other1",
        "network rm n1",
        "network rm n2",
    ]


LOST = ("docker: Error response from daemon: failed to create endpoint c1.web on network deployer-c1: "
        "network 3a61f0e2 not found\n")


def test_a_network_the_engine_lost_is_made_anew_with_its_containers_and_the_start_tried_again(shell):
    shell.docker.fail("run *", nth=1, stderr=LOST)  # docker run made the container, then could not start it
    shell.docker.container("c1.web", status="created")
    shell.docker.answer("network inspect --format * deployer-c1", "c1\n")
    shell.docker.answer("ps -aq --filter network=deployer-c1", "old1\nc1.web\n")
    shell.docker.answer("container inspect --format * old1", "db.c1,0a1b2c\n")
    shell.docker.answer("container inspect --format * c1.web", "\n")

    ran = shell.run(call("dpl_run", *RUN))

    assert ran.exited == 0, ran.stderr
    assert "the engine lost network deployer-c1" in ran.stderr
    assert [line for line in shell.docker.log() if not line.startswith(("network inspect", "ps"))] == [
        "run c1.web",
        "network disconnect -f deployer-c1 old1",
        "network disconnect -f deployer-c1 c1.web",
        "network rm deployer-c1",
        "network create --label deployer.instance=c1 deployer-c1",
        "network connect --alias db.c1 --alias 0a1b2c deployer-c1 old1",
        "network connect deployer-c1 c1.web",
        "start c1.web",
    ]


def test_a_lost_network_that_is_not_deployers_is_left_alone_and_the_error_shown(shell):
    shell.docker.fail("start *", stderr=LOST.replace("deployer-c1", "theirs"))
    shell.docker.answer("network inspect --format * theirs", "\n")

    ran = shell.run("dpl_launch start c1.web")

    assert ran.exited == 1 and "on network theirs: network 3a61f0e2 not found" in ran.stderr
    assert not any(line.startswith("network rm") for line in shell.docker.log())
