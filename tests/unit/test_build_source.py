"""build.py: Procfiles, slug settings, what a slug service runs, and the checks made
against a local git repo before any host is contacted (no Docker, no SSH)."""

import dataclasses
import re
import subprocess

import pytest

from deployer.ops import build, deploy
from deployer.remote import builds
from deployer.settings import Settings
from deployer import plugins
from deployer.model.spec import render
from deployer.errors import TemplateError
from deployer.model.template import parse


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def service(text):
    return parse(text, "deploy.yaml").services[0]


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "Procfile").write_text("web: httpd -f -p 8080\nworker:   sleep 10\n")
    (tmp_path / "deploy.yaml").write_text("")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    return tmp_path


def test_a_procfile_maps_process_types_to_commands_and_skips_other_lines():
    text = "# comment\nweb: bundle exec rails s -p $PORT\n\nworker:sidekiq\nnot a process\nbad name: x\n"
    assert build.procfile(text) == {"web": "bundle exec rails s -p $PORT", "worker": "sidekiq"}


def test_slug_images_default_to_the_heroku_ish_images_and_settings_override_each():
    assert Settings.parse({}).slug == build.Slug("flynn/slugbuilder", "flynn/slugrunner")
    assert Settings.parse({"slug": None}).slug == build.Slug("flynn/slugbuilder", "flynn/slugrunner")
    assert Settings.parse({"slug": {"runner_image": "me/runner"}}).slug == build.Slug("flynn/slugbuilder", "me/runner")


def test_a_slug_service_runs_the_runners_start_with_its_process_type(repo):
    web = service("web: {git: ., cmd: worker}")
    source = build.source(web, repo / "deploy.yaml", slug=build.Slug("b", "r"))

    built = build.built(web, source, "Staging")

    assert source.slug == build.Slug("b", "r") and source.dockerfile is None
    assert built.image.startswith(f"deployer/staging/web:{git(repo, 'rev-parse', 'HEAD')[:12]}-")
    assert built.options["cmd"] == ["start", "worker"]


def test_a_slug_service_without_cmd_runs_the_web_process(repo):
    web = service("web: {git: .}")
    assert build.built(web, build.source(web, repo / "deploy.yaml"), "i").options["cmd"] == ["start", "web"]


@pytest.mark.parametrize("cmd", ["wbe", "web --port 80"])
def test_a_cmd_that_is_not_one_process_type_of_the_procfile_is_a_template_error(repo, cmd):
    with pytest.raises(TemplateError) as e:
        build.source(service(f"web: {{git: ., cmd: {cmd}}}"), repo / "deploy.yaml")

    assert e.value.key == "web.cmd" and e.value.exit_code == 2
    assert f"{cmd!r} is not a process type of the Procfile in the repository" in str(e.value)
    assert "(known: web, worker)" in str(e.value)


def test_a_dockerfile_app_is_built_with_docker_build_even_with_a_procfile(repo):
    (repo / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "docker")

    source = build.source(service("web: {git: ., cmd: anything}"), repo / "deploy.yaml")

    assert source.dockerfile == "Dockerfile" and source.slug is None


def test_the_work_tree_is_deployed_with_dirty_and_the_version_names_its_tree(repo):
    web = service("web: {git: .}")
    head = git(repo, "rev-parse", "HEAD")[:12]
    assert build.source(web, repo / "deploy.yaml", dirty=True).version == head  # nothing uncommitted

    (repo / "new.txt").write_text("untracked\n")
    committed = build.source(web, repo / "deploy.yaml")
    dirty = build.source(web, repo / "deploy.yaml", dirty=True)

    assert committed.left_out and committed.version == head
    assert not dirty.left_out and dirty.version == f"{head}-dirty-{dirty.tree[:12]}"
    assert git(repo, "show", f"{dirty.tree}:new.txt") == "untracked"
    assert git(repo, "status", "--porcelain") == "?? new.txt"  # the repo's own index is untouched


def test_dirty_and_a_ref_together_are_refused(repo):
    with pytest.raises(TemplateError) as e:
        build.source(service("web: {git: {path: ., ref: HEAD}}"), repo / "deploy.yaml", dirty=True)
    assert e.value.key == "web.git" and "--dirty deploys the work tree, not ref 'HEAD'" in str(e.value)


def test_the_slug_build_script_quotes_every_value():
    source = build.Source("web", "/r", "t" * 40, "c" * 40, "c" * 12, False, None, slug=build.Slug("b; rm -rf /", "r"))

    script = builds.build_script("inst", "deployer/inst-web:ccc", source)

    assert script.endswith("dpl_slug_build web deployer/inst-web:ccc 'b; rm -rf /' r deployer-inst || exit 1")
    assert "dpl_network --label deployer.instance=inst deployer-inst || exit 1" in script


def test_pushed_to_a_registry_an_image_is_one_repository_below_it_with_the_same_tag(repo):
    here = build.source(service("web: {git: .}"), repo / "deploy.yaml")
    pushed = build.source(service("web: {git: .}"), repo / "deploy.yaml", registry="registry.example:5000/team")

    assert pushed.tag("Shop") == f"registry.example:5000/team/shop-web:{here.tag('Shop').split(':')[1]}"
    assert here.tag("Shop").startswith("deployer/shop/web:")  # one host: no registry, the tag as it was


def test_with_a_push_the_build_script_pushes_the_image_it_built_and_a_slug_builds_off_the_overlay():
    source = build.Source("web", "/r", "t" * 40, "c" * 40, "c" * 12, False, "Dockerfile")
    slug = dataclasses.replace(source, dockerfile=None, slug=build.Slug("b", "r"))

    dockerfile = builds.build_script("inst", "reg:5000/inst-web:ccc", source, push=True).splitlines()
    slugged = builds.build_script("inst", "reg:5000/inst-web:ccc", slug, push=True)

    assert dockerfile[0].startswith("dpl_docker_build reg:5000/inst-web:ccc ")
    assert dockerfile[1:] == ["dpl_push reg:5000/inst-web:ccc || exit 1"]
    assert slugged.endswith("dpl_slug_build web reg:5000/inst-web:ccc b r bridge || exit 1\n"
                            "dpl_push reg:5000/inst-web:ccc || exit 1")
    assert "dpl_network" not in slugged  # the instance's network on a swarm is the overlay its services make


@pytest.mark.parametrize("yaml", ["web: {git: ., cmd: web}", "web: {git: ., cmd: web, entrypoint: [/init, -v]}"])
def test_redeploy_runs_a_git_service_with_the_image_and_cmd_its_last_deploy_rendered(repo, yaml):
    template = parse(yaml, "deploy.yaml")
    web = template.services[0]
    built = build.built(web, build.source(web, repo / "deploy.yaml"), "i")
    (recorded,) = render(dataclasses.replace(template, services=(built,)), "i", "/v", plugins.installed())

    again = deploy._as_recorded(web, recorded.to_dict())  # the stored template says just "web"

    assert again.image == built.image and list(again.options["cmd"]) == ["start", "web"]


def test_no_two_instances_or_builds_share_an_image_tag_and_every_tag_is_valid(repo):
    web = build.source(service("web: {git: .}"), repo / "deploy.yaml")
    other = build.source(service("web_: {git: .}"), repo / "deploy.yaml")
    # the slug images are part of the recipe: changing the setting builds the commit again
    runner = build.source(service("web: {git: .}"), repo / "deploy.yaml", slug=build.Slug("b", "r"))
    tags = [web.tag("Shop"), web.tag("shop"), web.tag("a_b"), web.tag("a-b"), other.tag("shop"), runner.tag("shop")]

    assert len(set(tags)) == len(tags)
    valid = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
    assert all(valid.fullmatch(tag) for tag in tags), tags
    assert web.tag("a-b").startswith("deployer/a-b/web:") and other.tag("shop").startswith("deployer/shop/web:")
