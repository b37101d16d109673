"""``build`` -> ``git``: deployer builds images from committed git trees, on the host.

A compose build whose context is a directory of a git work tree, holding its Dockerfile,
becomes ``git: {path, dockerfile, build_args}``. The path is relative to the compose
file's directory, and a template's git path is relative to the template's: keep the
template beside the compose file. deployer builds the last commit (``deploy --dirty``
builds the work tree), and tags the image itself, so compose's ``image:`` beside a
``build:`` (the tag compose gave the build) is left out, with a note.

Any other build (a remote context, a directory outside git, no Dockerfile) is dropped
with why. The service then runs its ``image:`` if it has one; if not, the image is a
template variable ``{<SERVICE>_IMAGE}``: build and push it yourself, and give it at
deploy time.
"""

import os
import posixpath
import re

from voluptuous import Invalid

from ..model import schema
from ..errors import TemplateError
from . import unsupported
from .interpolate import has_variables
from .service import assignments, why_invalid

REMOTE = re.compile(r"^([a-z][a-z0-9+.-]*://|git@|github\.com/)")


def build(ctx, target, value, data, key):
    """``git:`` where deployer can build it, else dropped with why (the module says when)."""
    spec = {"context": value} if isinstance(value, str) else value
    if not isinstance(spec, dict):
        raise TemplateError("expected a context path or a mapping", file=ctx.project.file,
                            key=f"{target.compose}.{key}")
    context, dockerfile = spec.get("context", "."), spec.get("dockerfile")
    why = _not_buildable(ctx, context, dockerfile)
    if why:
        _not_built(ctx, target, key, why)
        return
    git = {"path": posixpath.normpath(context.replace(os.sep, "/"))}
    if dockerfile is not None:
        git["dockerfile"] = posixpath.normpath(dockerfile)
    args = _build_args(ctx, target, key, spec.get("args"))
    if args:
        git["build_args"] = args
    if ctx.writable(target, key, git):
        target.keys["git"] = git if len(git) > 1 else git["path"]
        target.comment("git", f"compose: build {context} (deployer builds its last commit; or deploy --dirty)")
        if target.image is not None:
            ctx.note(target, "image", f"{target.image!r} was the tag compose gave its build: deployer tags "
                                      "the images it builds itself")
            target.image = None
    for extra in spec.keys() - {"context", "dockerfile", "args"}:
        if not str(extra).startswith("x-"):
            ctx.drop(target, f"{key}.{extra}", unsupported.BUILD.get(extra, "not a build key this import knows"))


def _not_buildable(ctx, context, dockerfile):
    """Why deployer cannot build this context from git, or None."""
    if not isinstance(context, str) or has_variables(context) or has_variables(dockerfile or ""):
        return "its context holds a compose variable: deployer builds a path fixed in the template"
    if REMOTE.match(context):
        return f"the remote context {context}: deployer builds from a git work tree beside the template"
    if ctx.project.kind(context) in ("missing", "file"):
        return f"the context {context} is not a directory here"
    if ctx.project.git_root(context) is None:
        return f"the context {context} is not in a git repository: deployer builds committed git trees"
    name = dockerfile or "Dockerfile"
    if not isinstance(name, str) or name.startswith("/") or posixpath.normpath(name).startswith(".."):
        return f"the Dockerfile {name} is outside the context: deployer builds the context's own"
    if ctx.project.kind(os.path.join(context, name)) != "file":
        return f"no {name} in {context}: deployer builds a Dockerfile (or a Procfile app as a buildpack slug)"
    return None


def _not_built(ctx, target, key, why):
    if target.image is not None:
        ctx.drop(target, key, f"{why}; the service runs its image {target.image!r} as it is")
        return
    name = re.sub(r"[^A-Za-z0-9_]", "_", target.compose).upper() + "_IMAGE"
    target.image = ctx.interpolation.variable(name, f"{target.compose}.{key}")
    target.comment("image", f"compose built it: build and push it, then deploy with --var {name}=IMAGE")
    ctx.drop(target, key, f"{why}; the image is the variable {{{name}}}: build and push it, then deploy "
                          f"with --var {name}=IMAGE")


def _build_args(ctx, target, key, args):
    out = {}
    for name, value in assignments(args).items():
        if value is None:
            ctx.drop(target, f"{key}.args.{name}", "no value: compose takes it from its shell; give it one")
            continue
        try:
            out[name] = schema.scalar(value)
        except Invalid as e:
            ctx.drop(target, f"{key}.args.{name}", why_invalid(value, e))
    return out
