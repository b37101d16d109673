"""Apps built from their git repo on the host: a commit's archive streamed into docker build."""

import hashlib
import os
import subprocess

import pytest

from support import docker, inspect

DOCKERFILE = "FROM local/busybox:latest\nCOPY . /app\nCMD [\"sh\", \"-c\", \"exec sleep 3600\"]\n"


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A git repo whose app (in app/) has a Dockerfile, and a template at its top."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(DOCKERFILE)
    (root / "app" / "version.txt").write_text("one\n")
    (root / "deploy.yaml").write_text("web:\n  git: app\n  env: {ROLE: web}\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    return root


def app_file(instance, name):
    return docker("exec", f"{instance}.web", "cat", f"/app/{name}").stdout


def test_a_commit_is_built_on_the_host_once_and_a_new_commit_rebuilds(deployer_cli, repo, unique_instance):
    first = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)

    assert app_file(unique_instance, "version.txt") == "one\n"
    image = inspect(f"{unique_instance}.web", "{{.Config.Image}}")
    assert image.startswith(f"deployer/{unique_instance}/web:") and "create  web" in first.stdout

    again = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    assert "is up to date" in again.stdout

    (repo / "app" / "version.txt").write_text("two\n")
    git(repo, "commit", "-qam", "two")
    third = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)

    assert app_file(unique_instance, "version.txt") == "two\n"
    assert f"recreate  web      image {image} -> deployer/{unique_instance}/web:" in third.stdout
    # the build context is the app's directory at the commit, not the whole repo
    assert app_file(unique_instance, "Dockerfile") == DOCKERFILE
    assert docker("exec", f"{unique_instance}.web", "test", "-e", "/app/deploy.yaml").returncode != 0

    # prune: the retained container goes, and then the first build, which nothing uses now
    current = inspect(f"{unique_instance}.web", "{{.Config.Image}}")
    pruned = deployer_cli("prune", unique_instance, check=True).stdout
    assert f"pruned 1 image built for {unique_instance} on " in pruned and image in pruned
    assert docker("image", "inspect", image).returncode != 0
    assert docker("image", "inspect", current).returncode == 0
    deployer_cli("destroy", unique_instance, check=True)
    assert docker("image", "inspect", current).returncode != 0  # destroy: the instance's builds go too


def test_uncommitted_changes_are_left_out_with_a_warning(deployer_cli, repo, unique_instance):
    (repo / "app" / "version.txt").write_text("not committed\n")

    result = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)

    assert "warning: web: uncommitted changes in" in result.stderr and "were left out" in result.stderr
    assert app_file(unique_instance, "version.txt") == "one\n"


def test_a_twenty_mebibyte_file_arrives_intact(deployer_cli, repo, unique_instance):
    blob = os.urandom(20 * 1024 * 1024)
    (repo / "app" / "blob.bin").write_bytes(blob)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "blob")

    deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)

    inside = docker("exec", f"{unique_instance}.web", "sha256sum", "/app/blob.bin").stdout.split()[0]
    assert inside == hashlib.sha256(blob).hexdigest()


def test_a_failed_build_leaves_the_running_version_untouched(deployer_cli, repo, unique_instance):
    deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance, check=True)
    running = inspect(f"{unique_instance}.web", "{{.Id}}")
    (repo / "app" / "Dockerfile").write_text(DOCKERFILE + "RUN echo the build breaks here && false\n")
    git(repo, "commit", "-qam", "broken")

    result = deployer_cli("deploy", repo / "deploy.yaml", "--instance", unique_instance)

    assert result.returncode == 1
    assert "build of web (" in result.stderr and "failed" in result.stderr and "Traceback" not in result.stderr
    assert inspect(f"{unique_instance}.web", "{{.Id}}") == running
    assert inspect(f"{unique_instance}.web", "{{.State.Running}}") == "true"


def test_a_path_that_is_no_git_repo_or_has_no_dockerfile_nor_procfile_is_refused_before_the_host(deployer_cli, tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain.yaml").write_text("web: {git: plain}\n")
    not_a_repo = deployer_cli("validate", tmp_path / "plain.yaml", host=False)

    assert not_a_repo.returncode == 2 and "web.git:" in not_a_repo.stderr and "is not in a git repository" in not_a_repo.stderr

    (tmp_path / "plain" / "x").write_text("x")
    git(tmp_path / "plain", "init", "-q")
    git(tmp_path / "plain", "add", ".")
    git(tmp_path / "plain", "commit", "-qm", "x")
    no_dockerfile = deployer_cli("validate", tmp_path / "plain.yaml", host=False)

    assert no_dockerfile.returncode == 2 and "web.git: nothing to build in the repository" in no_dockerfile.stderr
    assert "there is neither" in no_dockerfile.stderr
