"""git services on a real two-node swarm (harness/swarm.py): built on the manager as on one
host, pushed to the registry deployer.registry names (harness/registry.py, which the nodes
reach at the swarm's host address), and run pinned by the push's digest, so a node that
never had the image (the worker, by a placement constraint) pulls that very image; without
the setting such a service is refused, naming it; a failed push changes nothing."""

import json
import subprocess

import pytest
from harness.engines import load_image
from harness.poll import free_port
from test_swarm import instance, services, swarm_cli  # noqa: F401 (fixtures)

DOCKERFILE = "FROM local/busybox:latest\nCOPY version.txt /version.txt\nCMD [\"sleep\", \"3600\"]\n"
TEMPLATE = "web:\n  git: app\n  placement: {constraints: ['node.role == worker']}\n"


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A git repo whose app (app/) has a Dockerfile needing no network, and a template at its
    top running it on the worker."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(DOCKERFILE)
    (root / "app" / "version.txt").write_text("one\n")
    (root / "deploy.yaml").write_text(TEMPLATE)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    return root


def image_of(swarm, instance):
    """The image the instance's web service runs, as its spec says."""
    return services(swarm, instance)[f"{instance}_web"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def version_on_worker(swarm, instance, path="/version.txt"):
    """The file at ``path`` in the web service's container, on the worker (None: none runs there)."""
    worker = swarm.worker
    ids = worker.docker("ps", "-q", "--filter", f"label=deployer.instance={instance}",
                        "--filter", "label=deployer.service=web").stdout.split()
    return worker.docker("exec", ids[0], "cat", path).stdout if ids else None


def test_a_git_service_is_pushed_runs_pinned_on_a_node_that_never_had_it_a_new_commit_updates_it_and_rolls_back(
        swarm, swarm_cli, instance, registry, repo):
    with_registry = {"FABRIC_DEPLOYER_REGISTRY": registry}
    commit = git(repo, "rev-parse", "HEAD")[:12]

    first = swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance, env=with_registry, check=True)

    image = image_of(swarm, instance)
    repository, _, digest = image.partition("@")
    assert repository.startswith(f"{registry}/{instance}-web:{commit}-") and digest.startswith("sha256:"), image
    assert "web | " in first.stderr and "warning" not in first.stderr  # built (and pushed) here, pinned: no probe
    assert swarm.worker.docker("image", "inspect", "--format", "{{json .RepoDigests}}", image).returncode == 0
    assert version_on_worker(swarm, instance) == "one\n"
    status = json.loads(swarm_cli("status", instance, "--json", check=True).stdout)["services"]
    assert status[0]["state"] == f"1/1 running on {swarm.worker.name}"

    again = swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance, env=with_registry, check=True)
    assert "unchanged" in again.stdout and "web | " not in again.stderr  # pinned already: nothing built or pushed

    (repo / "app" / "version.txt").write_text("two\n")
    git(repo, "commit", "-qam", "two")
    updated = swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance, env=with_registry, check=True)

    now = image_of(swarm, instance)
    assert now.startswith(f"{registry}/{instance}-web:{git(repo, 'rev-parse', 'HEAD')[:12]}-") and "@sha256:" in now
    assert now != image and version_on_worker(swarm, instance) == "two\n", updated.stdout
    assert services(swarm, instance)[f"{instance}_web"]["UpdateStatus"]["State"] == "completed"

    swarm_cli("rollback", instance, check=True)  # no repository here: the release's pinned image
    assert image_of(swarm, instance) == image and version_on_worker(swarm, instance) == "one\n"


def test_a_push_that_fails_names_the_registry_and_changes_nothing(swarm, swarm_cli, instance, registry, repo):
    swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance, env={"FABRIC_DEPLOYER_REGISTRY": registry},
              check=True)
    before = services(swarm, instance)[f"{instance}_web"]
    nowhere = f"{swarm.host}:{free_port()}"  # nothing listens there

    failed = swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance,
                       env={"FABRIC_DEPLOYER_REGISTRY": nowhere}, check=False)

    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    said = f"instance {instance}: push of web ({git(repo, 'rev-parse', 'HEAD')[:12]}) to deployer.registry {nowhere} failed: "
    assert said in failed.stderr and failed.stderr.strip().endswith("connection refused"), failed.stderr
    assert "Successfully" not in failed.stderr.splitlines()[-1]  # the push's reason, not the build's last lines
    after = services(swarm, instance)[f"{instance}_web"]
    assert after["Version"] == before["Version"] and version_on_worker(swarm, instance) == "one\n"
    history = json.loads(swarm_cli("history", instance, "--json", check=True).stdout)
    assert len(history["releases"]) == 1  # no release for a deploy that changed nothing


def test_without_a_registry_a_git_service_is_refused_naming_the_setting(swarm, swarm_cli, instance, repo):
    refused = swarm_cli("deploy", repo / "deploy.yaml", "--instance", instance, check=False)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{repo / 'deploy.yaml'}: web.git: an image built from git would be on the manager alone: " \
           "set deployer.registry to a registry every node pulls from" in refused.stderr, refused.stderr
    assert services(swarm, instance) == {}


@pytest.fixture
def slug_on_manager(swarm, slug_images, tmp_path):
    """The stand-in slug builder and runner on the manager alone: the worker gets the built
    image, runner and all, from the registry."""
    for image in slug_images.values():
        assert load_image([swarm.manager.engine], image, tmp_path / "image.tar") == {}
    return slug_images


def test_a_slug_app_is_built_on_the_manager_off_the_instance_s_overlay_and_runs_on_the_worker(
        swarm, swarm_cli, instance, registry, slug_on_manager, tmp_path):
    root = tmp_path / "slug"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Procfile").write_text("web: sleep 3600\n")
    (root / "app" / "version.txt").write_text("slug\n")
    (root / "deploy.yaml").write_text(TEMPLATE + "  cmd: web\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")

    deployed = swarm_cli("deploy", root / "deploy.yaml", "--instance", instance,
                         env={**slug_on_manager, "FABRIC_DEPLOYER_REGISTRY": registry}, check=True)

    assert "-----> Procfile app detected" in deployed.stderr and "@sha256:" in image_of(swarm, instance)
    assert version_on_worker(swarm, instance, "/app/version.txt") == "slug\n"
    driver = swarm.manager.docker("network", "inspect", "--format", "{{.Driver}}", f"deployer-{instance}")
    assert driver.stdout.strip() == "overlay"  # the builder made no bridge of that name before the services
