"""shellcheck over the host scripts: every shell source (``deployer/remote/sh/*.sh``, and
the stub docker of these tests), and the scripts a Host really sends, captured while
they run against the stub docker: a deploy's facts turn and apply turns (plans of
``plans.CASES``), -v, the builds, and every other operation.

Any finding fails the test, style included; a directive silencing one in a source says
why on its line. The generated scripts are checked with the repository's .shellcheckrc,
as the sources are, less two findings they make by design (GENERATED says why).
shellcheck must be installed (.ci/setup installs Debian's): without it these tests
fail, in CI and anywhere else, never skip.
"""

import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

import pytest

from deployer.errors import DeployerError
from deployer.model.plan import CREATE, KEEP, RECREATE, REMOVE, Action
from deployer.model.state import InstanceState, ServiceState
from deployer.ops.build import Slug, Source
from deployer.remote import apply, builds, host
from deployer.remote.apply import Limits
from deployer.remote.scripts import SOURCES, call, instance, script
from deployer.swarm import manager
from deployer.swarm.service import replica
from deployer.swarm.facts import ServiceFacts
from plans import CASES, deploy_turns
from stubdocker import BOUNDARY, HERE, Shell, StubDocker

ROOT = HERE.parent.parent
SWARM_SOURCES = files("deployer.swarm") / "sh"


# Findings that generated scripts make by design, and only they (not the sources):
GENERATED = [
    # SC2317 (command appears unreachable): a script carries whole sources and calls some
    # of their functions, some only through eval (the apply turn) or after redefining
    # them (-v's dpl_trace): shellcheck takes a function it never sees called for dead code
    "--exclude=SC2317",
    # SC2016 (expressions don't expand in single quotes): values enter a script single-quoted
    # (scripts.q) so that a $ in them (a secret, a template) is never expanded
    "--exclude=SC2016",
]


def shellcheck(paths, options=()):
    """shellcheck's findings about the files, one a line (nothing: clean)."""
    program = shutil.which("shellcheck")
    if program is None:
        pytest.fail("shellcheck is not installed (apt-get install shellcheck; .ci/setup does)")
    result = subprocess.run([program, "-s", "sh", "-f", "gcc", *options, *map(str, paths)], capture_output=True,
                            text=True)
    assert result.returncode in (0, 1), result.stderr  # 1: findings; anything else: it could not check
    return result.stdout


def check(folder, scripts):
    """The findings about generated scripts, ``{name: script}``, written as NAME.sh beside
    the repository's .shellcheckrc."""
    folder.mkdir()
    shutil.copy(ROOT / ".shellcheckrc", folder / ".shellcheckrc")
    for name, text in scripts.items():
        (folder / f"{name.replace(' ', '-')}.sh").write_text(text)
    return shellcheck(sorted(folder.glob("*.sh")), GENERATED)


def test_every_shell_source_is_clean():
    sources = sorted([*Path(str(SOURCES)).glob("*.sh"), *Path(str(SWARM_SOURCES)).glob("*.sh")])

    assert len(sources) >= 9
    assert shellcheck([*sources, HERE / "stubdocker.sh"]) == ""


def turns(tmp_path, monkeypatch, name, verbose=False, discovery=False):
    """The facts turn (the whole script) and the body of the apply turn of deploying a
    case on a host of its own."""
    folder = tmp_path / f"{name}{' -v' * verbose}"
    stub = StubDocker(folder / "docker")
    stub.install(monkeypatch)
    (facts, plan), _, error = deploy_turns(Shell(folder, stub), CASES[name], verbose, discovery)
    assert error is None
    return facts, plan


# A whole script is about 400 lines, and costs shellcheck about 0.4 s: bodies of the same
# kind are checked together, in one script put together as theirs are.


def test_the_turns_of_deploys_are_clean(tmp_path, monkeypatch):
    """The facts turn of a deploy allocating endpoints, with -v; the apply turns of a
    plan with each kind of step (create, start-first, stop-first, remove: "mixed"), of a
    rollback, of secrets, and of new services in waves."""
    facts, waves = turns(tmp_path, monkeypatch, "create in waves", verbose=True, discovery=True)
    plans = [turns(tmp_path, monkeypatch, name)[1] for name in ("mixed", "rollback", "secrets")] + [waves]

    assert check(tmp_path / "scripts", {"facts": facts, "apply": script(BOUNDARY, "\n".join(plans), apply.USES)}) == ""


def test_the_build_scripts_are_clean(tmp_path):
    source = Source("web", "/repo", "tree", "c" * 40, "c" * 12, False, "Dockerfile", (("A", "1"), ("B", "x y")))
    slug = Source("web", "/repo", "tree", "c" * 40, "c" * 12, False, None, slug=Slug())
    bodies = [builds.build_script("c1", "deployer/c1/web:1", s, push=push) for s in (source, slug) for push in (0, 1)]

    assert check(tmp_path / "scripts", {"builds": script(BOUNDARY, "\n".join(bodies), builds.USES)}) == ""


def test_the_scripts_of_every_other_operation_are_clean(shell, tmp_path, monkeypatch, render):
    bodies, uses = [], {}

    def recorded(boundary, body, sources=(), *args, **kwargs):
        bodies.append(body)
        uses.update(dict.fromkeys(sources))
        return script(boundary, body, sources, *args, **kwargs)

    monkeypatch.setattr(host, "script", recorded)
    shell.docker.container("c1.web")
    operations = shell.host(verbose=True)
    operations.instances()
    operations.history("c1")
    with pytest.raises(DeployerError):
        operations.stored("c1")  # none there
    operations.prune("c1", "ops@laptop", 0)
    operations.control("c1", "restart", [render("web: {image: team/web}\n")["web"]], "ops@laptop", 0)
    operations.write_state("c1", InstanceState("c1", "app.yaml", 1, "", ""),
                           {"release": 1, "template_sha256": "t", "template_text": "web: {}"}, history=3)
    operations.destroy("c1", True, "ops@laptop", 0)

    assert len(bodies) == 7
    assert check(tmp_path / "scripts", {"operations": script(BOUNDARY, "\n".join(bodies), uses, verbose=True)}) == ""


def test_the_swarm_engine_s_scripts_are_clean(tmp_path, render):
    """A deploy's facts and a plan of every kind of step on a swarm, and a destroy."""
    specs = render("web: {image: team/web, env: {A: '1'}}\nnew: {image: team/new}\n")
    old = render("web: {image: team/web}\n")["web"]
    actions = [Action(REMOVE, "gone", "not in the template"), Action(RECREATE, "web", "env", specs["web"]),
               Action(CREATE, "new", "new", specs["new"])]
    plan = manager.plan_script("c1", actions, {"web": ServiceState.of(old, "")}, Limits(60, 1, 5), 2, ("deployer-c1",))
    replicas = [Action(KEEP, "web.1", "unchanged", replica(old, 1)), Action(CREATE, "web.2", "new", replica(old, 2))]
    plan += manager.plan_script("c1", replicas, {"web.1": ServiceState.of(replica(old, 1), "")}, Limits(60, 1, 5), 2,
                                images={"team/web": "team/web"})[1:]  # scaled
    body = [instance("c1"), ServiceFacts("c1", images=("team/web",)).script(), *plan,
            call("dpl_swarm_destroy", 0, 60, "ops@laptop")]

    assert check(tmp_path / "scripts", {"swarm": script(BOUNDARY, "\n".join(body), manager.Manager.FACTS)}) == ""
