"""A ContainerSpec as a Swarm service: the arguments of ``docker service create`` and of the
``docker service update`` that turns one spec's service into another's. Pure: argv lists,
golden-tested; quoted only where they meet the shell.

The spec is the core's, the same one a host runs as a container, so one template deploys
to both: ``docker run`` options become their service equivalents here, and what a
service cannot be (a privileged one) is an error naming the service; what a template
cannot run on a swarm (``refused``: a git service without a registry, unpinned volumes)
is refused before anything changes, naming file and key. Every service:

- is ``<instance>_<service>``, on its instance's overlay network under the alias the spec
  gives it (``<service>.<instance>``: ``expose`` gives the same address on both engines),
  and on no other: Swarm names networks as DNS labels, without the dot of a service's own
  network (network.of_service), which only other instances' consumers join, and those
  are not found on a swarm yet;
- resolves to its tasks (``--endpoint-mode dnsrr``): no virtual IP, so no IPVS, which
  some kernels lack; ports are published in host mode on the nodes that run a task;
- carries deployer's labels on the service and on its containers: a change of config hash
  is a change of the task template, so every change is a rolling update Swarm reports on;
- runs where its ``placement`` says (constraints, spread), its image pinned by digest
  where the manager knows one (facts.pinned), its volumes named volumes of the node it is
  pinned to;
- updates start-first where the spec allows it (``ContainerSpec.start_first``), rolls back
  by itself when a new task fails within the monitor period, which covers the healthcheck's
  start period and retries (``monitor``).
"""

import posixpath
import re
import shlex

from ..errors import DeployerError, TemplateError
from ..model.schema import PORT, pinned
from ..model.spec import LABEL_CONFIG_HASH, LABEL_INSTANCE, ContainerSpec

PLACEMENT = {"constraint": "--constraint", "spread": "--placement-pref"}  # spec.placement's kinds
RESTART = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}
BOOLEAN = ("--init", "--privileged", "--no-healthcheck")  # docker run flags that take no value
# docker run option -> docker service option (None: the value is translated by _option)
OPTIONS = {
    "--user": "--user", "--workdir": "--workdir", "--memory": "--limit-memory", "--cpus": "--limit-cpu",
    "--health-cmd": "--health-cmd", "--health-interval": "--health-interval", "--health-timeout": "--health-timeout",
    "--health-retries": "--health-retries", "--health-start-period": "--health-start-period",
}
# what an update gives a service option the new spec no longer sets (Swarm's default)
RESET = {
    "--user": "", "--workdir": "", "--limit-memory": "0", "--limit-cpu": "0", "--health-cmd": "",
    "--health-interval": "0s", "--health-timeout": "0s", "--health-retries": "0", "--health-start-period": "0s",
    "--stop-grace-period": "10s", "--restart-condition": "any", "--restart-max-attempts": "0",
}
MIN_MONITOR = 5  # seconds a new task must keep running without a healthcheck
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def refused(template, registry=""):
    """What of a template a swarm cannot run, as an error naming its file and key (before
    anything changes): a ``git`` service when no ``registry`` is set (its image, built on
    the manager, would be on no other node: the setting deployer.registry is where it is
    pushed for them), and volumes of a service no ``==`` placement constraint pins to the
    nodes that hold them."""
    for s in template.services:
        if "git" in s.options and not registry:
            raise TemplateError("an image built from git would be on the manager alone: set deployer.registry to a "
                                "registry every node pulls from (such as registry.example:5000/team), and deployer "
                                "pushes it there; or build and push it yourself, then give it as image:",
                                file=template.path, key=f"{s.key}.git")
        if s.options.get("volumes") and not pinned(s.options.get("placement", {}).get("constraints", ())):
            raise TemplateError("volumes need the same directory on every node the service may run on: pin it "
                                "with placement: {constraints: ['node.hostname == NODE']} (or == a node label)",
                                file=template.path, key=f"{s.key}.volumes")


def name(instance, service):
    """The service's name in the swarm."""
    return f"{instance}_{service}"


def create_args(spec, release, image=None):
    """``docker service create`` ARGS (the ``image``, pinned by digest, else the spec's,
    and the command last)."""
    args = ["--detach", "--no-resolve-image", "--name", name(spec.instance, spec.service), "--replicas", "1",
            "--endpoint-mode", "dnsrr"]
    args += _pairs("--label", _labels(spec, release)) + _pairs("--container-label", _labels(spec))
    args += [arg for key, value in spec.env for arg in ("--env", f"{key}={value}")]
    args += [arg for port in spec.ports for arg in ("--publish", _publish(spec, port))]
    args += [arg for net in spec.networks[:1] for arg in ("--network", _network(*net))]
    args += [arg for option in _options(spec) for arg in option if arg is not None]
    args += [arg for mount in spec.mounts for arg in ("--mount", _mount(spec, mount))]
    args += [arg for kind, value in spec.placement for arg in (PLACEMENT[kind], _preference(kind, value))]
    args += _policy(spec)
    if spec.entrypoint is not None:
        args += ["--entrypoint", shlex.quote(spec.entrypoint)]  # docker splits it as a shell would
    return [*args, image or spec.image, *spec.cmd]


def update_args(recorded, spec, release, image=None):
    """``docker service update`` ARGS (the service's name last) taking the service of the
    ``recorded`` spec (a dict, as the state keeps it) to ``spec`` (and ``image``, as
    create_args)."""
    old = ContainerSpec.from_dict(recorded)
    args = ["--detach", "--no-resolve-image", "--image", image or spec.image]
    if old.cmd != spec.cmd:
        args += ["--args", shlex.join(spec.cmd)]
    if old.entrypoint != spec.entrypoint:
        args += ["--entrypoint", shlex.quote(spec.entrypoint or "")]
    args += ["--force"] if old.config_hash == spec.config_hash else []  # a task anew (--force, not running)
    args += _changed("--label", _labels(old), _labels(spec, release))
    args += _changed("--container-label", _labels(old), _labels(spec))
    args += _changed("--env", dict(old.env), dict(spec.env))
    if old.ports != spec.ports:
        args += [arg for port in old.ports for arg in ("--publish-rm", PORT.fullmatch(port)["container"])]
        args += [arg for port in spec.ports for arg in ("--publish-add", _publish(spec, port))]
    if old.mounts != spec.mounts:
        args += [arg for mount in old.mounts for arg in ("--mount-rm", mount.target)]
        args += [arg for mount in spec.mounts for arg in ("--mount-add", _mount(spec, mount))]
    for kind, flag in PLACEMENT.items():
        before, after = ([_preference(k, v) for k, v in s.placement if k == kind] for s in (old, spec))
        args += [arg for value in before if value not in after for arg in (f"{flag}-rm", value)]
        args += [arg for value in after if value not in before for arg in (f"{flag}-add", value)]
    before, after = old.networks[:1], spec.networks[:1]  # the instance's network alone (above)
    args += [arg for net in before if net not in after for arg in ("--network-rm", net[0])]
    args += [arg for net in after if net not in before for arg in ("--network-add", _network(*net))]
    new = dict((flag, value) for flag, value in _options(spec))
    for flag, value in new.items():
        args += [f"{flag}=true"] if value is None else [flag, value]
    for flag, _ in _options(old):
        if flag not in new:
            args += [f"{flag}=false"] if flag in BOOLEAN else [flag, RESET[flag]]
    return [*args, *_policy(spec), name(spec.instance, spec.service)]


def monitor(spec):
    """Seconds a new task must stay up for Swarm to call an update good: its healthcheck's
    start period plus interval x retries (docker's defaults where unset), else MIN_MONITOR."""
    options = dict(_options(spec))
    if "--health-cmd" not in options:
        return MIN_MONITOR
    interval = _seconds(options.get("--health-interval", "30s"))
    retries = int(options.get("--health-retries", 3))
    return max(MIN_MONITOR, int(_seconds(options.get("--health-start-period", "0s")) + interval * retries + 1))


def _policy(spec):
    order = "start-first" if spec.start_first else "stop-first"
    seconds = f"{monitor(spec)}s"
    return ["--update-order", order, "--update-failure-action", "rollback", "--update-monitor", seconds,
            "--rollback-order", order, "--rollback-monitor", seconds]


def _labels(spec, release=None):
    labels = {**dict(spec.labels), LABEL_CONFIG_HASH: spec.config_hash}
    return labels if release is None else {**labels, "deployer.release": str(release)}


def _pairs(flag, mapping):
    return [arg for key, value in mapping.items() for arg in (flag, f"{key}={value}")]


def _changed(flag, before, after):
    """``--FLAG-rm KEY`` for each key gone, ``--FLAG-add KEY=VALUE`` for each new or changed."""
    gone = [arg for key in sorted(before.keys() - after.keys()) for arg in (f"{flag}-rm", key)]
    return gone + _pairs(f"{flag}-add", {k: v for k, v in after.items() if before.get(k) != v})


def _mount(spec, mount):
    """A volume as a named volume of the node the service is pinned to (refused(): a
    placement constraint pins it), made there by Docker when first used:
    ``<instance>_<service>_<path id>``, labelled with its instance."""
    source = f"{spec.instance}_{spec.service}_{posixpath.basename(mount.source)}"
    fields = ["type=volume", f"source={source}", f"target={mount.target}",
              f"volume-label={LABEL_INSTANCE}={spec.instance}"]
    return ",".join(_csv(field) for field in fields + ["readonly"] * mount.read_only)


def _csv(field):
    """A field of --mount's comma-separated value, quoted as CSV where it holds a comma or quote."""
    return '"' + field.replace('"', '""') + '"' if "," in field or '"' in field else field


def _preference(kind, value):
    return f"spread={value}" if kind == "spread" else value


def _network(network, alias):
    return f"name={network}" + (f",alias={alias}" if alias else "")


def _publish(spec, port):
    """A ``-p`` of the spec as ``--publish``: in host mode, on every address of the node (a
    ``wan`` endpoint's 0.0.0.0); another host address has no meaning here."""
    match = PORT.fullmatch(port)
    if match is None or match["ip"] not in (None, "0.0.0.0"):
        raise DeployerError(f"service {spec.service}: port {port!r} names a host address, which a swarm service "
                            "cannot bind (it publishes on the nodes that run it): leave the address out")
    published = f",published={match['host']}" if match["host"] else ""
    return f"mode=host,target={match['container']}{published},protocol={match['proto'] or 'tcp'}"


def _options(spec):
    """The spec's ``docker run`` options as service options: ``(flag, value)``, value None
    for a flag that takes none."""
    flags, out = list(spec.flags), []
    while flags:
        flag = flags.pop(0)
        value = None if flag in BOOLEAN else flags.pop(0)
        out += _option(spec, flag, value)
    return out


def _option(spec, flag, value):
    if flag == "--restart":
        condition, _, attempts = value.partition(":")
        attempts = [("--restart-max-attempts", attempts)] if attempts else []
        return [("--restart-condition", RESTART[condition]), *attempts]
    if flag == "--stop-timeout":
        return [("--stop-grace-period", f"{value}s")]
    if flag in ("--init", "--no-healthcheck"):
        return [(flag, None)]
    if flag in OPTIONS:
        return [(OPTIONS[flag], value)]
    raise DeployerError(f"service {spec.service}: {flag.lstrip('-')} has no meaning for a swarm service")


def _seconds(duration):
    return sum(float(number) * UNITS[unit] for number, unit in re.findall(r"([0-9.]+)([a-z]+)", str(duration)))
