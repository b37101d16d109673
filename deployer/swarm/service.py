"""A ContainerSpec as a Swarm service: the arguments of ``docker service create`` and of the
``docker service update`` that turns one spec's service into another's. Pure: argv lists,
golden-tested; quoted only where they meet the shell.

The spec is the core's, the same one a host runs as a container, so one template deploys
to both: ``docker run`` options become their service equivalents here, and what a
service cannot be (a privileged one) is an error naming the service; what a template
cannot run on a swarm (``refused``: a git service without a registry, volumes neither
pinned nor of a ``volume_driver``, a ``wan`` endpoint of replicas) is refused before
anything changes, naming file and key.
Every service:

- is ``<instance>_<service>``, on its instance's overlay network under the alias the spec
  gives it (``<service>.<instance>``: ``expose`` gives the same address on both engines),
  and on the other networks the spec names as one host does (``overlay``): a service
  registering endpoints also on its own service network (network.of_service), under the
  same alias, and a consumer of another instance's endpoint on that service's network
  alone, so it reaches that service and none of the other instance's (as on one host:
  joining the other instance's network would reach them all); a routed service on the
  router's network too, under that alias (router.py);
- resolves to its tasks (``--endpoint-mode dnsrr``): no virtual IP, so no IPVS, which
  some kernels lack; ports are published in host mode on the nodes that run a task;
- carries deployer's labels on the service and on its containers: a change of config hash
  is a change of the task template, so every change is a rolling update Swarm reports on;
- runs where its ``placement`` says (constraints, spread), its image pinned by digest
  where the manager knows one (facts.pinned), its volumes named volumes of the node it is
  pinned to;
- updates start-first where the spec allows it (``ContainerSpec.start_first``), rolls back
  by itself when a new task fails within the monitor period, which covers the healthcheck's
  start period and retries (``monitor``);
- runs ``replicas: N`` as one service of N tasks (``whole``: the core's replica specs are
  one service, whose config hash is that of ``replicas: 1``), rolled ``batch`` tasks at a
  time (the setting deployer.rolling.batch; 0: all at once);
- gets its secrets as Swarm secrets, never in its spec (``secrets``): each value is a secret
  named by a hash of it (its seal, which is all specs and state hold of it: ``seal``),
  mounted in ``/run/secrets``, and an entrypoint of ``/bin/sh`` reads
  them into the env vars the template names, then execs the command the container would
  have run (``command``), so the template deploys unchanged on both engines.
"""

import dataclasses
import hashlib
import posixpath
import re
import shlex

from ..errors import DeployerError, TemplateError
from ..model import network
from ..model.schema import PORT, pinned
from ..model.spec import LABEL_CONFIG_HASH, LABEL_INSTANCE, LABEL_REPLICA, ContainerSpec
from ..remote.host import logs_options
from . import router

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
SEALED = "\0sealed:"  # a secret's value as a swarm's state holds it (no value holds a NUL: schema.text)
SECRET_NAME_MAX = 64  # characters of a Swarm secret's name
SECRET_FILES = "/run/secrets"  # where a task finds its Swarm secrets (a target is a file name there)
JOB_NAME_MAX = 63  # characters of a Swarm service's name (a job's: job_name)
UNHEEDED = ("--restart", "--health", "--no-healthcheck")  # service options a one-off goes without (job_args)
LABEL_ONE_OFF = "deployer.one-off"  # a one-off's label, as on one host (spec.one_off_args)
MIN_MONITOR = 5  # seconds a new task must keep running without a healthcheck
# why a replicated service's wan endpoint is refused: one host gives each replica its own host port, and a swarm
# runs the replicas as one service, whose tasks all publish the same ports
WAN_REPLICAS = ("a wan endpoint of replicas is not done on a swarm: one host publishes each replica on a host port of "
                "its own, and a swarm's replicas are one service, whose tasks all publish the same ports; reach it "
                "through a route:, or run one replica")
# how every create and update is sent: waited for by sh/swarm.sh, not by docker; the image as
# given (pinned by digest where the manager knows one: facts.pinned); with the registry login
# of the manager's docker client (its ~/.docker/config.json), which Swarm hands the nodes
# that run a task, so that they pull from a registry needing it (none: an empty one, harmless)
SENT = ("--detach", "--no-resolve-image", "--with-registry-auth")
UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def refused(template, registry=""):
    """What of a template a swarm cannot run, as an error naming its file and key (before
    anything changes): a ``git`` service when no ``registry`` is set (its image, built on
    the manager, would be on no other node: the setting deployer.registry is where it is
    pushed for them), volumes of a service no ``==`` placement constraint pins to the nodes
    that hold them, replicas of a service whose volumes are not ``shared`` (its tasks,
    all on the node it is pinned to, would share them: one volume a replica is not done),
    and replicas of a service registering a ``wan`` endpoint (WAN_REPLICAS)."""
    for s in template.services:
        if "git" in s.options and not registry:
            raise TemplateError("an image built from git would be on the manager alone: set deployer.registry to a "
                                "registry every node pulls from (such as registry.example:5000/team), and deployer "
                                "pushes it there; or build and push it yourself, then give it as image:",
                                file=template.path, key=f"{s.key}.git")
        if s.options.get("volumes") and not s.options.get("volume_driver") and \
                not pinned(s.options.get("placement", {}).get("constraints", ())):
            raise TemplateError("volumes need the same directory on every node the service may run on: pin it "
                                "with placement: {constraints: ['node.hostname == NODE']} (or == a node label), "
                                "or give a volume_driver whose volumes every node reaches",
                                file=template.path, key=f"{s.key}.volumes")
        if s.options.get("replicas", 1) > 1 and not all(v["shared"] for v in s.options.get("volumes", ())):
            raise TemplateError("the replicas of a service on a swarm share its volumes, on the node it is pinned "
                                "to: mark them shared (/data:shared), or run one replica", file=template.path,
                                key=f"{s.key}.volumes")
        if s.options.get("replicas", 1) > 1 and any(r["wan"] for r in s.options.get("register", {}).values()):
            raise TemplateError(WAN_REPLICAS, file=template.path, key=f"{s.key}.register")


def name(instance, service):
    """The service's name in the swarm."""
    return f"{instance}_{service}"


def whole(spec):
    """The service a spec is one task of: a replica's spec without its replica number (the
    field and the label), so that every replica of a service is the same service, whose
    config hash does not depend on how many run (it is that of ``replicas: 1``). A spec
    that is no replica is its service already."""
    if not spec.replica:
        return spec
    return dataclasses.replace(spec, replica=0, labels=tuple(kv for kv in spec.labels if kv[0] != LABEL_REPLICA))


def replica(spec, n):
    """Replica ``n`` of a service's ``spec`` (whole's inverse, as model/spec.py renders it):
    how facts.py tells a task of a replicated service to the core."""
    labels = tuple(sorted((*whole(spec).labels, (LABEL_REPLICA, str(n)))))
    return dataclasses.replace(spec, replica=n, labels=labels)


def create_args(spec, release, image=None, command=None, replicas=1, batch=1):
    """``docker service create`` ARGS (the ``image``, pinned by digest, else the spec's,
    and the command last) of ``replicas`` tasks of the spec's service (whole), rolled
    ``batch`` at a time; ``command``: the image's own (entrypoint, cmd), which a service
    with secrets needs (``_entry``)."""
    spec = whole(spec)
    args = [*SENT, "--name", name(spec.instance, spec.service), "--replicas", str(replicas), "--endpoint-mode", "dnsrr"]
    args += _pairs("--label", _labels(spec, release)) + _pairs("--container-label", _labels(spec)) + _env_args(spec)
    args += [arg for port in spec.ports for arg in ("--publish", _publish(spec, port))]
    args += [arg for net in _networks(spec) for arg in ("--network", _network(*net))]
    args += [arg for option in _options(spec) for arg in option if arg is not None]
    return [*args, *_placed_args(spec), *_policy(spec, replicas, batch), *_command_args(spec, image, command)]


def job_name(instance, service, kind):
    """The start of the name of a one-off of a service (``kind``: release, run), to which
    the script adds a random suffix (sh/swarm.sh, dpl_swarm_job): a service's name has 63
    characters at most, no dot."""
    return f"{name(instance, service)}_{kind}"[:JOB_NAME_MAX - 9]


def job_args(spec, argv, image=None, command=None):
    """``docker service create`` ARGS (but ``--name``: the script names each job) of a
    one-off of the spec's service (a release command, ``run``): a job of one task
    (``replicated-job``), never restarted, running ``argv`` (else the service's cmd) as a
    task of the service would (``image`` and ``command`` as in create_args): its env,
    secrets, volumes, placement (the node its volumes are on) and options, on its
    networks (its instance's, and those of other instances' services it exposes) without the service's alias (a one-off must not answer for it), no
    ports, as one host's one-off (spec.one_off_args). No healthcheck either, the image's
    included: Swarm stops a task it finds unhealthy, and a one-off on one host is never
    stopped by its health. Labelled with its instance (destroy removes one a killed script
    left) and as a one-off (deployer.one-off), which facts.py does not count as a service."""
    spec = dataclasses.replace(whole(spec), cmd=tuple(argv) or spec.cmd)
    one_off = {LABEL_ONE_OFF: spec.instance}
    args = [*SENT, "--mode", "replicated-job", "--restart-condition", "none",
            "--endpoint-mode", "dnsrr", *_pairs("--label", {LABEL_INSTANCE: spec.instance, **one_off})]
    args += _pairs("--container-label", one_off) + _env_args(spec)
    args += [arg for net, _ in spec.networks for arg in ("--network", _network(overlay(net), None))]
    args += [arg for option in _options(spec) if not option[0].startswith(UNHEEDED) for arg in option
             if arg is not None]
    return [*args, "--no-healthcheck", *_placed_args(spec), *_command_args(spec, image, command)]


def _env_args(spec):
    """The spec's env vars (``--env``) and secrets (``--secret``: a file each, ``secrets``)."""
    args = [arg for key, value in _plain_env(spec).items() for arg in ("--env", f"{key}={value}")]
    return args + [arg for source, target in secrets(spec).items()
                   for arg in ("--secret", f"source={source},target={target}")]


def _placed_args(spec):
    """The spec's volumes (``--mount``) and where its tasks may run (its placement)."""
    args = [arg for mount in spec.mounts for arg in ("--mount", _mount(spec, mount))]
    return args + [arg for kind, value in spec.placement for arg in (PLACEMENT[kind], _preference(kind, value))]


def _command_args(spec, image, command):
    """The end of a ``docker service create``: the entrypoint, the image and the args (_entry)."""
    entrypoint, argv = _entry(spec, command)
    return [*(["--entrypoint", entrypoint] if entrypoint is not None else []), image or spec.image, *argv]


def update_args(recorded, spec, release, image=None, command=None, replicas=1, batch=1, scaled=False):
    """``docker service update`` ARGS (the service's name last) taking the service of the
    ``recorded`` spec (a dict, as the state keeps it) to ``spec`` (and ``image`` and
    ``command``, as create_args) and its ``replicas`` tasks, rolled ``batch`` at a time when
    several; to that many tasks if ``scaled`` (it ran another count)."""
    old, spec = whole(ContainerSpec.from_dict(recorded)), whole(spec)
    args = [*SENT, "--image", image or spec.image, *_command_update(old, spec, command)]
    args += ["--force"] if old.config_hash == spec.config_hash else []  # a task anew (--force, not running)
    args += _changed("--label", _labels(old), _labels(spec, release))
    args += _changed("--container-label", _labels(old), _labels(spec))
    args += _changed("--env", _plain_env(old), _plain_env(spec))
    args += _secrets_update(old, spec)
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
    before, after = _networks(old), _networks(spec)
    args += [arg for net in before if net not in after for arg in ("--network-rm", net[0])]
    args += [arg for net in after if net not in before for arg in ("--network-add", _network(*net))]
    new = dict((flag, value) for flag, value in _options(spec))
    for flag, value in new.items():
        args += [f"{flag}=true"] if value is None else [flag, value]
    for flag, _ in _options(old):
        if flag not in new:
            args += [f"{flag}=false"] if flag in BOOLEAN else [flag, RESET[flag]]
    args += ["--replicas", str(replicas)] if scaled else []
    return [*args, *_policy(spec, replicas, batch), name(spec.instance, spec.service)]


def seal(instance, value):
    """A secret's value as a swarm's release records and its specs hash it: SEALED and a
    hash of instance and value (a sealed value stays as it is). A new value is a new seal,
    so the config hash changes, and the release configs, which anyone on a manager reads,
    hold no value; the Swarm secret (``secrets``) holds it."""
    if value.startswith(SEALED):
        return value
    return SEALED + hashlib.sha256(f"{instance}\0{value}".encode()).hexdigest()


def sealed(spec):
    """The spec with its secrets' values sealed (``seal``)."""
    env = tuple((key, seal(spec.instance, value) if key in spec.secrets else value) for key, value in spec.env)
    return dataclasses.replace(spec, env=env)


def secrets(spec):
    """``{Swarm secret name: target}`` of the spec's secret env vars: a secret an env var
    and value (sealed, as a swarm's specs hold it), ``<instance>_<VAR>_<hash>`` (shortened
    before the hash to a name's 64 characters), the hash of instance, var and value, so
    that a new value is a new secret (Swarm's are immutable) and the service's spec changes
    with it, while neither spec nor labels hold the value; the target is the var's name, a
    file in SECRET_FILES."""
    env = dict(spec.env)
    return {_secret_name(spec.instance, key, env[key]): key for key in spec.secrets if key in env}


def secret_values(spec):
    """``{Swarm secret name: value}`` of the spec's secrets (sealed, in a swarm's specs),
    which the deploy's script creates where missing (sh/swarm.sh, dpl_swarm_secret)."""
    env = dict(spec.env)
    return {name: env[key] for name, key in secrets(spec).items()}


def _secret_name(instance, key, value):
    digest = hashlib.sha256("\0".join((instance, key, value)).encode()).hexdigest()[:12]
    return f"{instance}_{key}"[: SECRET_NAME_MAX - len(digest) - 1] + f"_{digest}"


def _plain_env(spec):
    """The spec's env but its secrets (Swarm secrets: ``secrets``)."""
    return {key: value for key, value in spec.env if key not in spec.secrets}


def _secrets_update(old, spec):
    """``--secret-rm`` of each secret of ``old`` that ``spec`` no longer uses, then
    ``--secret-add`` of each new one (a changed value is both: its name holds its hash);
    ``--env-rm`` of old's secret vars, which a service deployed before secrets were Swarm
    secrets holds in its spec (none else does: removing one it lacks changes nothing), but
    those spec sets as plain vars (docker removes after adding)."""
    before, after = secrets(old), secrets(spec)
    gone = [arg for key in sorted(set(old.secrets) - set(_plain_env(spec))) for arg in ("--env-rm", key)]
    gone += [arg for name in before if name not in after for arg in ("--secret-rm", name)]
    return gone + [arg for name, key in after.items() if name not in before
                   for arg in ("--secret-add", f"source={name},target={key}")]


def _entry(spec, command):
    """``(--entrypoint's value or None, the args after the image)``: the spec's own, or for a
    spec with secrets ``/bin/sh -c SCRIPT`` exporting each from its file, then exec'ing
    the argv the container would have run (``command``)."""
    if not secrets(spec):
        return (None if spec.entrypoint is None else shlex.quote(spec.entrypoint)), list(spec.cmd)
    reads = " ".join(f"{key}=$(cat {SECRET_FILES}/{key} && echo .) || exit 1; export {key}=\"${{{key}%.}}\";"
                     for key in secrets(spec).values())  # (the dot keeps a value's trailing newlines)
    return shlex.join(["/bin/sh", "-c", f'{reads} exec "$@"', "deployer-secrets"]), _argv(spec, command)


def _argv(spec, command):
    """The argv a container of the spec runs: its entrypoint and cmd, else the image's
    (``command``: its config's entrypoint and cmd), as docker combines them (an entrypoint
    given drops the image's cmd; a cmd given replaces it)."""
    if spec.entrypoint is not None:
        return [spec.entrypoint, *spec.cmd]
    if command is None:
        raise DeployerError(f"service {spec.service}: its secrets reach it through an entrypoint that runs the "
                            f"image's own entrypoint and cmd, and the manager has no image {spec.image} to read "
                            "them from: pull it there (--pull), or give entrypoint: in the template")
    entrypoint, cmd = command
    return [*entrypoint, *(spec.cmd or cmd)]


def _command_update(old, spec, command):
    """The ``--args`` and ``--entrypoint`` of an update, where they change; both whenever
    either spec has secrets (the wrapped command depends on the image's)."""
    if secrets(old) or secrets(spec):
        entrypoint, argv = _entry(spec, command)
        return ["--args", shlex.join(argv), "--entrypoint", entrypoint or ""]
    out = ["--args", shlex.join(spec.cmd)] if old.cmd != spec.cmd else []
    return out + (["--entrypoint", shlex.quote(spec.entrypoint or "")] if old.entrypoint != spec.entrypoint else [])


def monitor(spec):
    """Seconds a new task must stay up for Swarm to call an update good: its healthcheck's
    start period plus interval x retries (docker's defaults where unset), else MIN_MONITOR."""
    options = dict(_options(spec))
    if "--health-cmd" not in options:
        return MIN_MONITOR
    interval = _seconds(options.get("--health-interval", "30s"))
    retries = int(options.get("--health-retries", 3))
    return max(MIN_MONITOR, int(_seconds(options.get("--health-start-period", "0s")) + interval * retries + 1))


def grace(spec):
    """Seconds Swarm gives a task to stop before it kills it (the spec's stop_timeout)."""
    return int(_seconds(dict(_options(spec)).get("--stop-grace-period", RESET["--stop-grace-period"])))


def _policy(spec, replicas=1, batch=1):
    """How Swarm rolls an update and its rollback; several tasks ``batch`` at a time (0: all
    at once, as deployer.rolling.batch and --update-parallelism both mean; one task is rolled
    as Swarm's default, one at a time)."""
    order = "start-first" if spec.start_first else "stop-first"
    seconds = f"{monitor(spec)}s"
    parallel = ["--update-parallelism", str(batch), "--rollback-parallelism", str(batch)] if replicas > 1 else []
    return ["--update-order", order, "--update-failure-action", "rollback", "--update-monitor", seconds,
            *parallel, "--rollback-order", order, "--rollback-monitor", seconds]


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
    """A volume as a named volume, labelled with its instance, made by Docker where a task
    first uses it: of the template's ``volume_driver`` (named by the plugin), else of the
    node the service is pinned to (refused(): a placement constraint pins it),
    ``<instance>_<service>_<path id>``."""
    source = None if mount.driver else f"{spec.instance}_{spec.service}_{posixpath.basename(mount.source)}"
    return mount.volume_arg(source, [(LABEL_INSTANCE, spec.instance)])


def _preference(kind, value):
    return f"spread={value}" if kind == "spread" else value


def _networks(spec):
    """The spec's networks as the swarm names them (``overlay``), and a routed service's
    router's (router.py)."""
    return [*((overlay(net), alias) for net, alias in spec.networks), *router.joins(spec)]


def overlay(net):
    """A network of the core's (model/network.py) as the swarm names it: a service's own
    network, ``deployer-<instance>.<service>``, is ``deployer_<instance>_<service>``
    (Swarm names networks as DNS labels, so without the dot; ``deployer_``, which no
    instance's network, ``deployer-<instance>``, begins with); any other as it is."""
    owner, dot, service = net[len(network.PREFIX):].partition(".")
    return f"deployer_{name(owner, service)}" if net.startswith(network.PREFIX) and dot else net


def network_args(net):
    """``docker network create``'s arguments (the name last) making one of the core's
    networks as the swarm names it (``overlay``), labelled with its instance."""
    return [*network.create_args(net)[:-1], overlay(net)]


def _network(net, alias):
    return f"name={net}" + (f",alias={alias}" if alias else "")


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


def logs_command(instance, specs, follow, tail):
    """One shell command printing the log lines of the specs' services (a service once,
    whichever of its replicas were asked for), from every node, as ``docker service logs``
    prefixes them: with the task and its node (``c1_web.2@node1 | ...``)."""
    options = [*logs_options(follow, tail), "--no-task-ids"]
    parts = [f"docker service logs {shlex.join([*options, name(instance, service)])} 2>&1 &"
             for service in dict.fromkeys(spec.service for spec in specs)]
    return ["sh", "-c", " ".join(parts) + " wait"]
