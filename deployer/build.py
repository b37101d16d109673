"""``git:`` services: the deploying side's part of building an app from its git repo.

The tree deployed is a commit (HEAD, or ``ref:``), never the work tree: uncommitted
changes are left out with a warning. Its ``git archive`` is streamed into ``docker build``
on the host (host.py), so no registry is needed, and the image is tagged with the
instance, service and commit, so that a second deploy of the same commit builds nothing.

This session builds apps that carry a ``Dockerfile``; buildpack slugs come later.
"""

import os
import subprocess
from dataclasses import dataclass

from .errors import TemplateError


@dataclass(frozen=True)
class Source:
    service: str
    root: str  # the repository's top directory
    subdir: str  # the app's path inside it ("" for the top)
    commit: str
    dirty: bool
    dockerfile: str
    build_args: tuple

    def tag(self, instance):
        return f"deployer/{instance.lower()}-{self.service.lower()}:{self.commit[:12]}"

    def archive(self):
        """A running ``git archive`` of the app's tree at the commit; read its stdout."""
        tree = f"{self.commit}:{self.subdir}" if self.subdir else self.commit
        return subprocess.Popen(["git", "-C", self.root, "archive", "--format=tar", tree], stdout=subprocess.PIPE)


def source(service, template_path):
    """Where a ``git:`` service's app is, checked: a git repo, a known ref, a Dockerfile."""
    spec = service.options["git"]
    key = f"{service.key}.git"
    path = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(template_path)), spec["path"]))
    root = _git(path, key, "rev-parse", "--show-toplevel")
    if root is None:
        raise TemplateError(f"{path} is not in a git repository", file=template_path, key=key)
    subdir = os.path.relpath(path, root)
    commit = _git(root, key, "rev-parse", "--verify", "--quiet", f"{spec.get('ref', 'HEAD')}^{{commit}}")
    if commit is None:
        raise TemplateError(f"unknown git ref {spec.get('ref', 'HEAD')!r} in {root}", file=template_path, key=key)
    subdir = "" if subdir == "." else subdir
    dockerfile = spec.get("dockerfile", "Dockerfile")
    listed = _git(root, key, "ls-tree", "--name-only", commit, "--", os.path.join(subdir, dockerfile)) or ""
    if not listed.strip():
        raise TemplateError(
            f"no {dockerfile} in {subdir or 'the repository'} at {commit[:12]} "
            "(buildpack slugs are not supported yet)",
            file=template_path,
            key=key,
        )
    dirty = bool((_git(root, key, "status", "--porcelain", "--", subdir or ".") or "").strip())
    return Source(service.name, root, subdir, commit, dirty, dockerfile, tuple(sorted(spec.get("build_args", {}).items())))


def _git(cwd, key, *args):
    try:
        result = subprocess.run(["git", "-C", cwd, *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise TemplateError("git is not installed on the deploying machine", key=key) from None
    return result.stdout.strip() if result.returncode == 0 else None
