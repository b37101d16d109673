"""How a finished script's output is read: stdout split into sections at the boundary's
marks (``framing.sections``), stderr made into the error a user sees (``Host.error``),
and a facts script read back by its parser, run for real against the stub docker."""

import json

import pytest

from deployer.remote.framing import sections
from deployer.remote.host import Host
from deployer.remote.session import LocalRunner, Result
from stubdocker import BOUNDARY as B


def test_stdout_is_split_into_named_sections_at_the_boundarys_marks():
    out = f"ignored before any mark\n{B} roots\n/var/lib/deployer\n/srv\n{B} state\n{{}}\n{B} docker\n[]\n"

    assert sections(out, B) == {"roots": "/var/lib/deployer\n/srv\n", "state": "{}\n", "docker": "[]\n", "_marks": []}


def test_ok_marks_are_listed_in_order_and_end_the_section_before_them():
    out = f"{B} facts\nx\n{B} ok web 1.0 2.5\nnot in any section\n{B} ok db 2.5 3.0\n"

    assert sections(out, B) == {"facts": "x\n", "_marks": ["web 1.0 2.5", "db 2.5 3.0"]}


def test_a_mark_after_a_file_without_a_final_newline_still_starts_a_section():
    out = f"{B} template\nweb: {{image: x}}{B} state\n{{}}"

    assert sections(out, B) == {"template": "web: {image: x}", "state": "{}", "_marks": []}


def test_a_section_may_be_empty_and_a_name_may_hold_spaces():
    out = f"{B} missing\n{B} file /s/instances/a b/state.json\n{{}}\n"

    assert sections(out, B) == {"missing": "", "file /s/instances/a b/state.json": "{}\n", "_marks": []}


def test_text_that_only_looks_like_a_mark_is_content():
    out = f"{B} history\n@@deployer-0000000000000000 ok web 1 2\n{B}x\n"

    assert sections(out, B) == {"history": f"@@deployer-0000000000000000 ok web 1 2\n{B}x\n", "_marks": []}


# -- Host.error: what a user reads when a script fails ------------------------------------


def error(stderr, exited=1):
    return Host(LocalRunner()).error(Result(exited, "", stderr), "c1")


def test_the_error_is_the_last_deployer_lines_and_docker_messages_without_their_prefix():
    e = error("deployer: one\n\ndeployer: two\nError response from daemon: three\ndeployer: four\n")

    assert e.message == "two | Error response from daemon: three | four"
    assert (e.host, e.instance, e.details) == ("local", "c1", [])


def test_a_new_containers_log_lines_are_details_not_the_message():
    e = error("deployer: the new container of web did not start well (exited)\nlog: starting\nlog:  indented\n")

    assert e.message == "the new container of web did not start well (exited)"
    assert e.details == ["starting", " indented"]


def test_dockers_hint_to_read_its_help_is_left_out():
    e = error("docker: invalid reference format.\nSee 'docker run --help'.\n"
              "Run 'docker run --help' for more information\n")

    assert e.message == "docker: invalid reference format. | See 'docker run --help'."


@pytest.mark.parametrize("stderr", ["", "\n  \n", "log: only a log line\n"])
def test_a_script_that_failed_saying_nothing_gives_its_exit_status(stderr):
    assert error(stderr, exited=126).message == "exit status 126"


# -- facts: the script and its parser, one round trip -------------------------------------


def test_an_instances_facts_come_back_in_one_script(shell):
    shell.instance_dir.mkdir(parents=True)
    (shell.instance_dir / "state.json").write_text(json.dumps(
        {"instance": "c1", "template": "app.yaml", "release": 4, "deployed_at": "", "deployed_by": "", "services": {}}))
    container = {"Name": "/c1.web", "Image": "sha256:1", "Config": {"Labels": {"deployer.service": "web"}},
                 "State": {"Running": True, "Status": "running"}}
    image = {"Id": "sha256:1", "RepoTags": ["team/app:latest"]}
    shell.docker.answer("ps *", "abc\n")
    network = {"Name": "deployer-c1", "IPAM": {"Config": []}}
    shell.docker.answer("inspect abc team/app redis deployer-c1 deployer-c1.db",
                        json.dumps([container, image, network]), exit=1)  # redis, deployer-c1.db: not here
    facts = shell.host().facts("c1", ["team/app", "redis"], discovery=True, networks=["deployer-c1", "deployer-c1.db"])

    assert (facts.roots.state_dir, facts.roots.volume_dir) == (str(shell.state_dir), str(shell.volume_dir))
    assert facts.state.release == 4
    assert [(c.name, c.service, c.running) for c in facts.containers] == [("c1.web", "web", True)]
    assert facts.images == {"team/app": "sha256:1"}
    assert facts.networks == {"deployer-c1"}


def test_facts_of_an_instance_the_host_does_not_know_have_no_state(shell):
    facts = shell.host().facts("c1")

    assert (facts.state, facts.containers, facts.images) == (None, (), {})
