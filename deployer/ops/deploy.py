"""Deploying: bring an instance to a template (deploy), to the template the host holds
(redeploy), or to a release of its history (rollback); and validate, which needs no host.

Each works out what the instance should run (a Desired, from facts the engine reads under
the instance's lock) and hands it to converge.py. Variables, builds of git services and
endpoints are resolved here; nothing prints.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from .. import plugins
from ..errors import DeployerError, TemplateError, UnreachableError
from ..model import discovery, network, route, template as templates
from ..model.plan import split
from ..model.spec import ContainerSpec, render, scaled
from ..model.state import check_instance_name
from ..model.variables import MASK, UnsetVariables, check_secrets
from . import build, hooks
from .converge import Desired, converge


def validate(template_path, variables=None):
    """Load and render the template for a throwaway instance: every template error, no
    host, no secrets needed (placeholders for {instance} and {host})."""
    template = templates.load(template_path, variables={**(variables or {}), "instance": "validate", "host": "validate"})
    template, _ = _with_builds(template, template_path, "validate")
    others = {  # another instance's endpoints are only known on the host
        ref: discovery.Endpoint("validate", 0, 0) for s in template.services for ref in s.options.get("expose", {}) if "/" in ref
    }
    endpoints = discovery.allocate(template, {}, set(), "validate", "validate")
    try:
        discovery.dependencies(template, others)
    except TemplateError as e:
        raise e.where(file=template.path)
    secrets = {name: MASK for name in template.secret_names}
    render(template, "validate", "/volumes", plugins.installed(), secrets, {**endpoints, **others})
    route.wanted(template)
    return template


@dataclass(frozen=True)
class Options:
    """How to deploy, from the task's flags (None: the setting, then the default)."""

    force: bool = False
    dry_run: bool = False
    pull: bool = False
    lock_wait: int | None = None
    dirty: bool = False  # git services: deploy the work tree as it is, not the commit
    progress: Callable[[str, str], None] | None = None  # progress(service, line): a build's output, as it comes
    hooks: bool = True  # False: --no-hooks


@dataclass(frozen=True)
class Inputs:
    """What the deploying side gives an instance: variables, and where secrets come from."""

    variables: dict = dataclasses.field(default_factory=dict)
    secrets: dict = dataclasses.field(default_factory=dict)  # name -> value (env + --secrets file)


def deploy(host, template_path, instance, options=Options(), inputs=Inputs()):
    """Bring the instance to the template: only services that changed are recreated.

    Variables not given are taken from the instance's state, else from the template's
    defaults (``Vars``): a value given to an earlier deploy beats a default. That takes one
    more round trip, only when the template has placeholders left without a value, or
    defaults of variables not given.
    """
    check_instance_name(instance)
    variables = _variables(host, instance, inputs.variables)
    try:
        template, unset = templates.load(template_path, variables=variables), None
    except UnsetVariables as e:
        template, unset = None, e
    if unset or template.defaults.keys() - variables.keys():
        try:
            stored = host.stored(instance)[2].variables
        except UnreachableError:
            raise
        except DeployerError:
            if unset:
                raise unset from None  # a new instance: the variables must be given
            stored = {}
        if stored or unset:
            variables = _variables(host, instance, {**stored, **inputs.variables})
            template = templates.load(template_path, variables=variables)
    template, sources = _with_builds(template, template_path, instance, options.dirty, host.settings.slug, host.registry)
    own = hooks.of("deploy", host, instance, options, template, inputs.secrets)
    return _deploy_template(host, instance, template, str(template_path), variables, options, inputs, own, sources)


def _with_builds(template, template_path, instance, dirty=False, slug=build.Slug(), registry=""):
    """The template with each ``git:`` service's image named after its version, under the
    ``registry`` it is pushed to if any (and a slug's cmd the runner's), and the sources to
    build those images from (checked here, before any host is contacted)."""
    sources = {s.name: build.source(s, template_path, dirty, slug, registry)
               for s in template.services if "git" in s.options}
    services = tuple(
        build.built(s, sources[s.name], instance) if s.name in sources else s for s in template.services
    )
    return dataclasses.replace(template, services=services), sources


def redeploy(host, instance, options=Options(), inputs=Inputs(), scale=None):
    """Apply again the template the host holds for the instance, with its variables (and
    with ``scale``, service -> replicas, kept in its state: see ``scale``)."""
    check_instance_name(instance)
    text, source, state = host.stored(instance)
    variables = _variables(host, instance, {**state.variables, **inputs.variables})
    template = templates.parse(text, source, variables=variables)
    unknown = sorted((scale or {}).keys() - {s.name for s in template.services})
    if unknown:
        raise DeployerError(f"no service {unknown[0]!r} to scale (services: {', '.join(s.name for s in template.services)})",
                            host=host.name, instance=instance)
    built = []  # git services run the image and command of the last deploy: the repo is not here
    for s in template.services:
        if "git" in s.options:
            recorded = [svc.spec for name, svc in state.services.items() if split(name)[0] == s.name]
            if not recorded:
                raise DeployerError(f"{s.name} was never built here: deploy it from its template", host=host.name,
                                    instance=instance)
            s = _as_recorded(s, recorded[0])
        built.append(s)
    template = dataclasses.replace(template, services=tuple(built))
    own = hooks.of("deploy", host, instance, options, secrets=inputs.secrets)  # fabric.yaml's: not the host's template
    return _deploy_template(host, instance, template, state.template, variables, options, inputs, own, scale=scale)


def scale(host, instance, counts, options=Options()):
    """Run ``counts`` (service -> replicas) of the instance's services: the template the
    host holds applied again with them, a release like any other (rollback restores the
    counts before it). The counts are kept in the instance's state and beat the template's
    ``replicas`` in later deploys, as Dokku's ``ps:scale`` does; a service that leaves the
    template forgets its count. Scaling up creates replicas and touches no other; scaling
    down removes the highest numbers first, each leaving its route before it stops."""
    return redeploy(host, instance, options, scale=counts)


def _as_recorded(service, spec):
    """A git service with the image and cmd its recorded spec ran (a slug's cmd is the
    runner's ``start <type>``); the spec's cmd carries the entrypoint's tail before it."""
    tail = len((service.options.get("entrypoint") or [])[1:])
    return dataclasses.replace(service, image=spec["image"], options={**service.options, "cmd": spec["cmd"][tail:]})


def _variables(host, instance, given):
    """The built-in variables win: {instance} and {host} always mean this instance, this host."""
    return {**given, "instance": instance, "host": host.hostname}


def _deploy_template(host, instance, template, source, variables, options, inputs, hooked, sources=None, scale=None):
    check_secrets(template.secret_names, inputs.secrets, template.path)
    routes = route.wanted(template)
    images = tuple(dict.fromkeys(s.image for s in template.services))
    own = {k: v for k, v in variables.items() if k not in ("instance", "host")}
    sources = sources or {}
    notes = host.check(template) + tuple(
        f"{name}: uncommitted changes in {src.root} were left out (deployed {src.commit[:12]}; --dirty deploys them)"
        for name, src in sources.items() if src.left_out
    )

    def desired(facts):
        if not options.dry_run:  # a commit the host has not built yet is built now, once
            for src in sources.values():
                tag = src.tag(instance)
                if tag not in facts.images:
                    facts.images[tag] = host.build(tag, src, instance, options.progress)
        known = {**(facts.state.secrets if facts.state else {}), **inputs.secrets}
        secrets = {name: known[name] for name in template.secret_names if name in known}
        counts = {name: count for name, count in {**(facts.state.scale if facts.state else {}), **(scale or {})}.items()
                  if name in {s.name for s in template.services}}  # a service gone forgets its count
        counted = scaled(template, counts)
        endpoints, others, deps = discovery.resolve(counted, instance, facts, host.etcd, host.names_replicas)
        specs = render(counted, instance, facts.roots.volume_dir, plugins.installed(), secrets, {**others, **endpoints})
        return Desired(discovery.ordered(specs, deps), facts.images, template.text, source, own, secrets,
                       {k: e.to_dict() for k, e in endpoints.items()}, deps, network.missing(specs, facts.networks, instance),
                       releases={s.name: s.options["release"] for s in template.services if "release" in s.options},
                       routes=routes, scale=counts)

    discovery_used = bool(host.etcd or discovery.registered(template)) or any(s.options.get("expose") for s in template.services)
    built = {src.tag(instance) for src in sources.values()}
    networks = network.asked(template, instance, across=not host.etcd)
    result = hooks.around(hooked, lambda post: converge(host, instance, images, desired, options, note="",
                                                        discovery_used=discovery_used, built=built,
                                                        networks=networks, routed=bool(routes), post=post))
    return dataclasses.replace(result, notes=(*notes, *result.notes))


def rollback(host, instance, to=None, options=Options()):
    """Run a release of the history again (by default the one before the current), between
    fabric.yaml's pre-rollback and post-rollback hooks (the pre hook before the history is
    read). A rollback runs no release command: what a migration did is not undone by
    running an older one again, nor is a newer migration to run; a pre-rollback hook is
    the place for such a step."""
    check_instance_name(instance)
    return hooks.around(hooks.of("rollback", host, instance, options),
                        lambda post: _rollback(host, instance, to, options, post))


def _rollback(host, instance, to, options, post):
    releases = [r for r in host.history(instance) if r["release"]]  # 0: a first deploy that changed nothing
    if not releases:
        raise DeployerError("no releases in the history to roll back to", host=host.name, instance=instance)
    number = to if to is not None else releases[-1]["release"] - 1
    target = next((r for r in releases if r["release"] == number), None)
    if target is None:
        known = ", ".join(str(r["release"]) for r in releases)
        raise DeployerError(f"no release {number} in the history (known: {known})", host=host.name, instance=instance)
    if "template_text" not in target:
        raise DeployerError(f"the template of release {number} is no longer on the host (templates/"
                            f"{target.get('template_sha256')}.yaml)", host=host.name, instance=instance)
    specs = [ContainerSpec.from_dict(s["spec"]) for s in target["services"].values()]
    ids = {name: s["image_id"] for name, s in target["services"].items()}
    images = tuple(dict.fromkeys([s.image for s in specs] + [i for i in ids.values() if i]))

    def desired(facts):
        chosen = [_pinned(spec, ids[spec.unit], facts, host, instance, number) for spec in specs]
        wanted = {s.image: ids[s.unit] or facts.images.get(s.image) for s in chosen}
        return Desired(
            tuple(chosen), wanted, target["template_text"], target["template"],
            target.get("variables", {}), target.get("secrets", {}), target.get("endpoints", {}),
            networks=network.missing(chosen, facts.networks, instance), routes=target.get("routes", {}),
            scale=target.get("scale", {}),
        )

    return converge(host, instance, images, desired, options, note=f"rollback to release {number}",
                    discovery_used=bool(host.etcd), networks=network.of_specs(specs),
                    routed=bool(target.get("routes")), post=post)


def _pinned(spec, image_id, facts, host, instance, number):
    """The recorded spec, run from the recorded image id where its reference moved since.

    A retained container with that spec and image is started again as it is; otherwise
    the image id must still be on the host.
    """
    if not image_id or facts.images.get(spec.image) == image_id:
        return spec
    if any(c.config_hash == spec.config_hash and c.image_id == image_id for c in facts.containers):
        return spec
    if image_id in facts.images:
        return dataclasses.replace(spec, image=image_id)
    raise DeployerError(
        f"release {number} ran {spec.service} from image {spec.image} ({image_id}), which is no longer on the "
        "host, and no retained container has it: pull or build that image, then roll back again",
        host=host.name,
        instance=instance,
    )
