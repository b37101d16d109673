"""``dpl_run`` (``sh/replace.sh``): a new container's ``docker run``, against a stub docker.
When a host port it publishes is taken, the error says who holds it, not only Docker's
words: another instance (by its container), a container of no instance, or a program
outside Docker."""

import pytest

from deployer.remote.scripts import call

ALLOCATED = ("docker: Error response from daemon: driver failed programming external connectivity on endpoint "
             "c1.web (0123): Bind for 127.0.0.1:8080 failed: port is already allocated\n"
             "\nRun 'docker run --help' for more information\n")
IN_USE = ("docker: Error response from daemon: driver failed programming external connectivity on endpoint "
          "c1.web (0123): Error starting userland proxy: listen tcp4 0.0.0.0:8080: bind: address already in use\n")
PUBLISHED = "ps --filter publish=8080 --format *"


def up(shell):
    return shell.run(call("dpl_up", "web", "c1.web", "", "-d", "--name", "c1.web", "-p", "127.0.0.1:8080:80", "team/app"))


@pytest.mark.parametrize("holder, says", [
    ("shop.web shop\n", "host port 8080 is held by instance shop (its container shop.web)"),
    ("hand-made \n", "host port 8080 is published by container hand-made, which no instance holds"),
])
def test_a_port_already_allocated_names_the_instance_or_container_holding_it(shell, holder, says):
    shell.docker.fail("run *", exit=125, stderr=ALLOCATED)
    shell.docker.answer(PUBLISHED, holder)

    ran = up(shell)

    assert ran.exited == 1 and ran.done == []
    assert ran.error.message.endswith("Bind for 127.0.0.1:8080 failed: port is already allocated | " + says)


def test_a_port_a_program_outside_docker_listens_on_says_so(shell):
    shell.docker.fail("run *", exit=125, stderr=IN_USE)

    ran = up(shell)

    assert ran.error.message.endswith(
        "address already in use | host port 8080 is in use on the host, by no container (another program listens on it)")


def test_another_failure_is_dockers_own_words_alone(shell):
    shell.docker.fail("run *", exit=125, stderr="docker: Error response from daemon: pull access denied.\n")

    ran = up(shell)

    assert ran.error.message == "docker: Error response from daemon: pull access denied."
    assert not [line for line in shell.docker.log() if line.startswith("ps")]
