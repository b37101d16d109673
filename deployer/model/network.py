"""Networks: each instance's private network, and the per-service networks other
instances join to reach one endpoint.

Every container of an instance joins ``deployer-<instance>``, a user-defined bridge
labelled ``deployer.instance=<instance>``, under a stable alias ``<service>.<instance>``:
its siblings reach it by that name and its container port, and no other instance's
container can (Docker isolates bridge networks from each other). A stable alias, not the
container's name or address, so that recreating a service moves no endpoint and no
dependent needs recreating.

A service that registers endpoints also joins ``deployer-<instance>.<service>``: an
``expose`` of ``other/service:endpoint`` attaches the consumer to that network alone, so it
reaches the named service and none of that instance's other services. (A network cannot
narrow a service down to one port: the named service's other endpoints are reachable too.)
Instance names hold no dot, so ``deployer-a.b`` (instance ``a``, service ``b``) can never
be the network of an instance. Everything here is pure: names and ``docker`` arguments.
"""

from ..errors import DeployerError

LABEL = "deployer.instance"
PREFIX = "deployer-"


def of_instance(instance):
    """The instance's private network."""
    return f"{PREFIX}{instance}"


def of_service(instance, service):
    """The network another instance's consumer joins to reach this service's endpoints."""
    return f"{PREFIX}{instance}.{service}"


def alias(instance, service):
    """The service's DNS name on its networks: the same across recreations, and unique on
    the host, so a consumer on two instances' networks never finds two answers."""
    return f"{service}.{instance}"


def owner(network):
    """The instance a network of deployer's belongs to (for its label)."""
    return network[len(PREFIX):].split(".", 1)[0]


def create_args(network):
    """The arguments of ``docker network create`` making one of deployer's networks,
    labelled with its instance (so that destroy finds it)."""
    return ["--label", f"{LABEL}={owner(network)}", network]


def changes(before, after, labels):
    """What a spec's networks changing means, in the plan's words: ``joins its instance's
    network`` (an instance deployed before private networks), ``joins shop's network for
    db:sql``, ``leaves shop's network``."""
    old = {name for name, _ in before}
    new = [name for name, _ in after]
    own = owner(new[0]) if new else None
    out = ["joins its instance's network"] if new and new[0] not in old else []
    out += [_joins(name, labels) for name in new[1:] if name not in old and owner(name) != own]
    return out + [f"leaves {owner(name)}'s network" for name in sorted(old - set(new)) if owner(name) != own]


def joined(spec):
    """The other instances' networks a new container joins, in the plan's words."""
    return [_joins(name, dict(spec.labels)) for name, _ in spec.joins if owner(name) != spec.instance]


def _joins(name, labels):
    instance, _, service = name[len(PREFIX):].partition(".")
    refs = sorted({ref.split("/", 1)[1] for ref in labels.values() if ref.startswith(f"{instance}/{service}:")})
    return f"joins {instance}'s network for {', '.join(refs) or service}"


def asked(template, instance, across=True):
    """The networks a deploy of ``template`` asks the facts about: the instance's, its
    registering services', and (``across``: the state backend) the service networks of
    other instances it exposes."""
    names = [of_instance(instance)]
    names += [of_service(instance, s.name) for s in template.services if s.options.get("register")]
    if across:
        names += [of_service(*ref.split(":")[0].split("/")) for s in template.services
                  for ref in s.options.get("expose", {}) if "/" in ref]
    return tuple(dict.fromkeys(names))


def of_specs(specs):
    """Every network the specs' containers join (a rollback's, from its recorded specs)."""
    return tuple(dict.fromkeys(name for spec in specs for name, _ in spec.networks))


def missing(specs, present, instance):
    """The instance's own networks the specs need and the host lacks (a deploy creates
    them). Another instance's network is never created here: its absence means that
    instance was deployed before private networks, or destroyed."""
    out = []
    for spec in specs:
        for name, _ in spec.networks:
            if name in present or name in out:
                continue
            if owner(name) != instance:
                raise DeployerError(f"{spec.service} exposes an endpoint of instance {owner(name)!r}, which has no "
                                    f"network {name} on this host: deploy {owner(name)} again (to move it onto "
                                    "private networks) first", instance=instance)
            out.append(name)
    return tuple(out)
