"""A git service's image on a swarm (Manager.build): built on the manager as on one host,
pushed in the same script to the registry its tag names, and run pinned by the digest the
push gave; run for real against the stub docker (no registry, no swarm)."""

import subprocess

import pytest

from deployer.errors import DeployerError
from deployer.model.template import parse
from deployer.ops import build
from deployer.remote.session import LocalRunner
from deployer.settings import Settings
from deployer.swarm.manager import Manager

REGISTRY = "reg.example:5000/team"
MANAGER = "info --format {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}"
DIGEST = "sha256:" + "f" * 64


@pytest.fixture
def source(tmp_path):
    """A committed app with a Dockerfile, to be pushed to REGISTRY."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM local/busybox\n")
    (app / "deploy.yaml").write_text("web: {git: .}\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "one"]):
        subprocess.run(["git", "-C", str(app), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       check=True, capture_output=True)
    web = parse("web: {git: .}\n", str(app / "deploy.yaml")).services[0]
    return build.source(web, app / "deploy.yaml", registry=REGISTRY)


@pytest.fixture
def manager(shell):
    shell.docker.answer(MANAGER, "true node1\n")
    return Manager(LocalRunner(), Settings(state_dir=str(shell.state_dir), registry=REGISTRY))


def test_the_image_is_built_then_pushed_in_one_script_and_runs_pinned_by_the_push_s_digest(shell, manager, source):
    tag = source.tag("c1")
    shell.docker.answer(f"image inspect --format {{{{json .RepoTags}}}} {{{{json .RepoDigests}}}} {tag}",
                        f'["{tag}"] ["{tag.rsplit(":", 1)[0]}@{DIGEST}", "other/web@sha256:{"e" * 64}"]\n')

    image = manager.build(tag, source, "c1")

    assert image == f"{tag}@{DIGEST}"
    steps = [line.split()[0] for line in shell.docker.log(skip=("info", "image inspect"))]
    assert steps == ["build", "push"] and shell.docker.log()[-2] == f"push {tag}"


def test_a_push_that_fails_names_host_instance_service_and_registry(shell, manager, source):
    shell.docker.fail("push *", stderr="Get \"https://reg.example:5000/v2/\": dial tcp: connection refused\n")

    with pytest.raises(DeployerError) as error:
        manager.build(source.tag("c1"), source, "c1")

    assert str(error.value) == (f"host local: instance c1: push of web ({source.version}) to deployer.registry "
                                f"{REGISTRY} failed: Get \"https://reg.example:5000/v2/\": dial tcp: connection refused")


def test_a_push_that_gave_no_registry_digest_is_an_error_not_an_image_used_by_name(shell, manager, source):
    tag = source.tag("c1")
    shell.docker.answer(f"image inspect --format {{{{json .RepoTags}}}} {{{{json .RepoDigests}}}} {tag}",
                        f'["{tag}"] []\n')

    with pytest.raises(DeployerError) as error:
        manager.build(tag, source, "c1")

    assert f"to deployer.registry {REGISTRY} gave {tag} no registry digest" in str(error.value)
