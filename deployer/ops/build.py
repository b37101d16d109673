"""``git:`` services: the deploying side's part of building an app from its git repo.

The tree deployed is a commit (HEAD, or ``ref:``), not the work tree: uncommitted changes
are left out with a warning, unless ``--dirty`` asks for the work tree as it is (tracked
and untracked files, ignored ones excepted), written as a tree object through a temporary
index, so nothing is copied. Its ``git archive`` is streamed to the host (remote/host.py), so no
registry is needed, and the image is tagged with the instance, service and version (the
commit, or ``<commit>-dirty-<tree>``), so that a second deploy of the same version builds
nothing.

An app with a ``Dockerfile`` is built by ``docker build``. Any other app is a buildpack
slug (Flynn's slugbuilder/slugrunner): it needs a ``Procfile``, and the service's ``cmd``
names one of its process types, which the runner image starts as ``start <type>``.
Everything a deploy can check here (the repo, the ref, the Dockerfile or Procfile and its
process type) is checked before any host is contacted.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace

from ..errors import TemplateError

# The images of the original Heroku-ish contract; any image following it works.
DEFAULT_BUILDER = "flynn/slugbuilder"
DEFAULT_RUNNER = "flynn/slugrunner"
DEFAULT_PROCESS = "web"  # a slug service without ``cmd`` runs its Procfile's web process

_PROCESS = re.compile(r"([A-Za-z0-9_-]+):[ \t]*(\S.*)")


@dataclass(frozen=True)
class Slug:
    """The images a slug is built and run with (settings ``deployer.slug.*``)."""

    builder: str = DEFAULT_BUILDER
    runner: str = DEFAULT_RUNNER


@dataclass(frozen=True)
class Source:
    service: str
    root: str  # the repository's top directory
    tree: str  # the app's tree object: what is archived
    commit: str
    version: str  # the commit's first 12 digits, or <that>-dirty-<tree's 12> for a work tree
    left_out: bool  # uncommitted changes in the app exist and were not deployed
    dockerfile: str | None  # None: a buildpack slug
    build_args: tuple = ()
    slug: Slug | None = None
    subdir: str = ""  # the app's path in the repository ("" for the top)
    registry: str = ""  # where the image is pushed for other nodes (a swarm's deployer.registry), "": nowhere

    @property
    def where(self):
        return self.subdir or "the repository"

    def tag(self, instance):
        """``deployer/<instance>/<service>:<version>-<recipe>``. The recipe is a hash of what
        else makes the image (the exact names, the app's path, Dockerfile and build args,
        the slug images): names that fold to one tag (``Shop``/``shop``, ``a_b``/``a-b``), or
        one commit built two ways, never share an image.

        Pushed to a registry, it is ``<registry>/<instance>-<service>:<version>-<recipe>``:
        one path component below the setting's, since some registries take no more (Docker
        Hub's ``team/repository``, a Harbor project's), and the same tag, so a commit pushed
        once is not built again and two instances sharing a repository never share an image."""
        recipe = [instance, self.service, self.subdir, self.dockerfile, self.build_args, self.slug]
        digest = hashlib.sha256(repr(recipe).encode()).hexdigest()[:8]
        if self.registry:
            return f"{self.registry}/{_component(instance)}-{_component(self.service)}:{self.version}-{digest}"
        return f"deployer/{_component(instance)}/{_component(self.service)}:{self.version}-{digest}"

    def archive(self):
        """A running ``git archive`` of the app's tree; read its stdout."""
        return subprocess.Popen(["git", "-C", self.root, "archive", "--format=tar", self.tree], stdout=subprocess.PIPE)


def _component(name):
    """A name as a part of an image's repository: lower case, letters and digits joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def source(service, template_path, dirty=False, slug=Slug(), registry=""):
    """Where a ``git:`` service's app is, checked: a git repo, a known ref, a Dockerfile, or
    a Procfile with the service's process type. ``dirty``: the work tree, not a commit;
    ``registry``: where its image is pushed (the engine's, Engine.registry)."""
    spec = service.options["git"]
    try:
        found = _version(service, spec, _locate(template_path, spec["path"]), dirty)
        return replace(_recipe(found, service, spec, slug), registry=registry)
    except TemplateError as e:
        raise e.where(file=template_path, key=f"{service.key}.git")


def _locate(template_path, path):
    """The repository's top directory and the app's path in it ("" for the top)."""
    path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(template_path)), path))
    root = _git(path, "rev-parse", "--show-toplevel")
    if root is None:
        raise TemplateError(f"{path} is not in a git repository")
    subdir = os.path.relpath(path, root)
    return root, "" if subdir == "." else subdir


def _version(service, spec, location, dirty):
    """The Source of the app's tree at the commit, or (``dirty``) in the work tree."""
    root, subdir = location
    ref = spec.get("ref", "HEAD")
    if dirty and "ref" in spec:
        raise TemplateError(f"--dirty deploys the work tree, not ref {ref!r}: deploy without one of them")
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit is None:
        raise TemplateError(f"unknown git ref {ref!r} in {root}")
    tree = _app_tree(root, commit, subdir)
    if tree is None:
        raise TemplateError(f"no {subdir} at {commit[:12]}")
    version = commit[:12]
    if dirty:
        work = _app_tree(root, _work_tree(root, subdir), subdir)
        if work is None:
            raise TemplateError(f"no {subdir} in the work tree of {root}")
        version, tree = (version, tree) if work == tree else (f"{version}-dirty-{work[:12]}", work)
    left_out = not dirty and bool((_git(root, "status", "--porcelain", "--", subdir or ".") or "").strip())
    return Source(service.name, root, tree, commit, version, left_out, None, subdir=subdir)


def _recipe(found, service, spec, slug):
    """How the app is built: its Dockerfile (or the one named), else as a slug from its Procfile."""
    dockerfile = spec.get("dockerfile")
    if dockerfile is not None or _listed(found, "Dockerfile"):
        dockerfile = dockerfile or "Dockerfile"
        if not _listed(found, dockerfile):
            raise TemplateError(f"no {dockerfile} in {found.where} at {found.version}")
        return replace(found, dockerfile=dockerfile, build_args=tuple(sorted(spec.get("build_args", {}).items())))
    if not _listed(found, "Procfile"):
        raise TemplateError(
            f"nothing to build in {found.where} at {found.version}: a Dockerfile is built with docker build, "
            "a Procfile app as a buildpack slug, and there is neither"
        )
    processes = procfile(_git(found.root, "show", f"{found.tree}:Procfile") or "")
    cmd = _process(service)
    if len(cmd) != 1 or cmd[0] not in processes:
        raise TemplateError(
            f"{' '.join(cmd)!r} is not a process type of the Procfile in {found.where} at {found.version} "
            f"(known: {', '.join(processes) or 'none'}); a slug service's cmd names one",
            key=f"{service.key}.cmd",
        )
    return replace(found, slug=slug)


def built(service, source, instance):
    """The service as it runs: the built image, and for a slug the runner's ``start <type>``."""
    if source.slug is None:
        return replace(service, image=source.tag(instance))
    options = {**service.options, "cmd": ["start", *_process(service)]}
    return replace(service, image=source.tag(instance), options=options)


def _process(service):
    return list(service.options.get("cmd") or [DEFAULT_PROCESS])


def procfile(text):
    """A Procfile's process types and their commands (``name: command`` lines)."""
    return {m[1]: m[2].strip() for m in map(_PROCESS.fullmatch, text.splitlines()) if m}


def _app_tree(root, treeish, subdir):
    """The tree object of the app's directory in a commit or tree (None: no such directory)."""
    tree = _git(root, "rev-parse", "--verify", "--quiet", f"{treeish}:{subdir}")
    return tree if tree and _git(root, "cat-file", "-t", tree) == "tree" else None


def _work_tree(root, subdir):
    """The work tree as a tree object, through a temporary copy of the index (its stat
    cache keeps ``git add -A`` fast); the repository's own index is left as it was."""
    index = os.path.join(root, _git(root, "rev-parse", "--git-path", "index"))
    with tempfile.TemporaryDirectory(prefix="deployer-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if os.path.exists(index):
            shutil.copyfile(index, env["GIT_INDEX_FILE"])
        if _git(root, "add", "-A", "--", subdir or ".", env=env) is None:
            raise TemplateError(f"git add of the work tree in {root} failed")
        return _git(root, "write-tree", env=env)


def _listed(source, name):
    return bool((_git(source.root, "ls-tree", "--name-only", source.tree, "--", name) or "").strip())


def _git(cwd, *args, env=None):
    try:
        result = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True, env=env)
    except FileNotFoundError:
        raise TemplateError("git is not installed on the deploying machine") from None
    return result.stdout.strip() if result.returncode == 0 else None
