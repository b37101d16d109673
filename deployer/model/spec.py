"""Service + plugins -> ContainerSpec: everything ``docker run`` needs, as data.

A ContainerSpec is pure and hashable. Its config hash (a label on the container) lets
later deploys tell whether a running container still matches its template; its argv is
built here and quoted only where it meets a shell (remote/scripts.py), so tests assert on lists.

Defaults chosen for users of ``docker run``: restart policy ``unless-stopped`` (the
instance comes back after a host reboot) and ``init: true`` (a tiny init as PID 1, so
signals reach the process and ``docker stop`` does not wait out its timeout).
"""

import dataclasses
import functools
import hashlib
import json
from dataclasses import asdict, dataclass

from ..errors import TemplateError
from ..plugins.base import Mount, RenderContext
from . import network
from .schema import LABEL_EXPOSED, PORT, unit

LABEL_INSTANCE = "deployer.instance"
LABEL_SERVICE = "deployer.service"
LABEL_CONFIG_HASH = "deployer.config-hash"
LABEL_REPLICA = "deployer.replica"


@dataclass(frozen=True)
class ContainerSpec:
    instance: str
    service: str
    image: str
    cmd: tuple[str, ...]
    entrypoint: str | None
    env: tuple[tuple[str, str], ...]
    mounts: tuple[Mount, ...]
    ports: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    flags: tuple[str, ...]  # the remaining docker run options, e.g. ("--restart", "always")
    host_dirs: tuple[str, ...]
    secrets: tuple[str, ...] = ()  # env names whose values are secrets
    # (network, alias or ""): the instance's own network first, then those it joins besides
    # (none for a spec recorded before private networks: it ran on Docker's default bridge)
    networks: tuple[tuple[str, str], ...] = ()
    replica: int = 0  # n of ``replicas: N`` (N > 1), from 1; 0: the service's one container
    # where a swarm may run its tasks: ("constraint", "node.labels.tier == web"),
    # ("spread", "node.labels.zone"); nothing to one Docker engine
    placement: tuple[tuple[str, str], ...] = ()

    @property
    def name(self):
        """``<instance>.<service>``, or ``<instance>.<service>.<n>`` for a replica:
        unambiguous, since instance names hold no dot."""
        return container_name(self.instance, self.unit)

    @property
    def unit(self):
        """What a plan replaces in one step, and the state records: the service, or one of
        its replicas (``web.2``)."""
        return unit(self.service, self.replica)

    @functools.cached_property
    def config_hash(self):
        return hashlib.sha256(self._json.encode()).hexdigest()[:16]

    @functools.cached_property
    def _json(self):
        """The spec as JSON; without ``replica`` or ``placement`` when there is none (nor a
        mount's ``driver`` and ``options``), so that specs recorded before those existed hash
        as they did (nothing is recreated)."""
        data = asdict(self)
        for key in ("replica", "placement"):
            if not data[key]:
                del data[key]
        for mount in data["mounts"]:  # a host directory's mount, as recorded before volume drivers
            for key in ("driver", "options"):
                if not mount[key]:
                    del mount[key]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def to_dict(self):
        """Plain JSON data (lists, not tuples): what state and history record."""
        return json.loads(self._json)

    @classmethod
    def from_dict(cls, data):
        """The spec a release recorded, for rollback and for saying what changed."""
        fields = {key: _tuples(value) if isinstance(value, list) else value for key, value in data.items()}
        fields["mounts"] = tuple(Mount(**{**m, "options": _tuples(m.get("options", []))}) for m in data["mounts"])
        return cls(**fields)

    @property
    def start_first(self):
        """Whether a replacement may start before the current container stops: not when
        they would share a fixed host port, nor a volume (two databases on one data
        directory corrupt it)."""
        return not self.mounts and not any(_fixed_host_port(p) for p in self.ports)

    def run_args(self, name=None, env_file=None):
        """The arguments of ``docker run``: detached, under the spec's name and labels.

        With ``env_file`` (a path the host gives docker the ``hidden_env`` lines at), the
        secrets are not in the arguments, so not in the host's process list while
        ``docker run`` runs."""
        args = ["-d", "--name", name or self.name]
        args += _pairs("--label", self.labels + ((LABEL_CONFIG_HASH, self.config_hash),))
        args += [arg for p in self.ports for arg in ("-p", p)]
        if self.networks:
            network_, alias = self.networks[0]
            args += ["--network", network_, *(["--network-alias", alias] if alias else [])]
            if self.replica:  # its own name besides its service's (which answers for every replica)
                args += ["--network-alias", network.alias(self.instance, self.unit)]
        return args + self._container_args(self.flags, self.cmd, env_file)

    @property
    def joins(self):
        """The networks the container joins besides its instance's, as ``(network, alias)``:
        ``docker run`` takes one network (before API 1.44), so the host connects these
        between creating the container and starting it (replace.sh, dpl_run)."""
        return self.networks[1:]

    def hidden_env(self):
        """The secret env vars a docker env file can carry: all but those holding a line
        break (its format is a line per variable; those stay ``-e``)."""
        return {k: v for k, v in self.env if k in self.secrets and "\n" not in v and "\r" not in v}

    @property
    def one_off_joins(self):
        """The ``--dpl-join NETWORK=`` arguments (network.sh, dpl_created) of a one-off: the
        networks it joins besides its instance's, without the service's aliases."""
        return [arg for net, _ in self.joins for arg in ("--dpl-join", f"{net}=")]

    def one_off_args(self, argv, env_file=None):
        """``docker run`` arguments of a one-off container: the service's image, env,
        volumes and options, no ports, no restart, removed when done; labelled apart so
        that deploys never count it as one of the service's containers. ``env_file`` as
        in run_args."""
        flags = [f for i, f in enumerate(self.flags) if "--restart" not in self.flags[max(i - 1, 0) : i + 1]]
        # its instance's network, without the service's alias: a one-off must not answer for it
        joined = ["--network", self.networks[0][0]] if self.networks else []
        return ["--rm", "--label", f"deployer.one-off={self.instance}", *joined,
                *self._container_args(flags, argv or self.cmd, env_file)]

    def _container_args(self, flags, cmd, env_file=None):
        hidden = self.hidden_env() if env_file else {}
        args = _pairs("-e", tuple((k, v) for k, v in self.env if k not in hidden))
        args += ["--env-file", env_file] if hidden else []
        args += [arg for m in self.mounts for arg in self._mount_args(m)]
        args += flags
        if self.entrypoint is not None:
            args += ["--entrypoint", self.entrypoint]
        # "--" is not understood by docker run; the image ends the options instead.
        return [*args, self.image, *cmd]


    def _mount_args(self, mount):
        """A host directory bind-mounted (``-v``), or a named volume of a volume driver, labelled
        with its instance (``--mount``: ``-v`` names no driver)."""
        if mount.driver:
            return ["--mount", mount.volume_arg(labels=[(LABEL_INSTANCE, self.instance)])]
        return ["-v", f"{mount.source}:{mount.target}{':ro' if mount.read_only else ''}"]


def _fixed_host_port(port):
    match = PORT.fullmatch(port)
    return match is None or bool(match["host"])


def _tuples(items):
    return tuple(_tuples(item) if isinstance(item, list) else item for item in items)


def container_name(instance, service):
    return f"{instance}.{service}"


def render(template, instance, volume_dir, plugins, secrets=None, endpoints=None):
    """Every service of the template as the ContainerSpecs of ``instance``, in template
    order: one per replica (``replicas: N``, N > 1), in replica order."""
    context = RenderContext(instance, volume_dir, template.settings, secrets or {}, endpoints or {})
    try:
        return tuple(_spec(service, dataclasses.replace(context, replica=n), plugins)
                     for service in template.services for n in replicas(service))
    except TemplateError as e:
        raise e.where(file=template.path)


def replicas(service):
    """The replica numbers of a service: ``(0,)`` for its one container (today's name),
    else 1..N. A fixed host port cannot be bound by several containers: an error."""
    count = service.options.get("replicas", 1)
    if count == 1:
        return (0,)
    fixed = [p for p in service.options.get("ports", ()) if _fixed_host_port(p)]
    if fixed:
        raise TemplateError(f"host port {fixed[0]!r} is fixed, and {count} replicas cannot all bind it: publish a "
                            "container port alone (docker picks a host port for each), or route the service",
                            key=f"{service.key}.ports")
    return tuple(range(1, count + 1))


def scaled(template, counts):
    """The template with the ``replicas`` of the services in ``counts`` (service -> count:
    the instance's ``scale``, which beats the template's)."""
    services = tuple(dataclasses.replace(s, options={**s.options, "replicas": counts[s.name]}) if s.name in counts else s
                     for s in template.services)
    return dataclasses.replace(template, services=services)


def _spec(service, context, plugins):
    fragments = [plugin.fragment(service, context) for plugin in plugins]
    options = service.options
    env, labels = {}, dict(options.get("labels", {}))
    for fragment in fragments:
        env.update(fragment.env)
        labels.update(fragment.labels)
    labels.update({LABEL_INSTANCE: context.instance, LABEL_SERVICE: service.name})
    if context.replica:
        labels[LABEL_REPLICA] = str(context.replica)
    cmd = list(options.get("cmd", ()))
    entrypoint = options.get("entrypoint")
    if entrypoint:
        # docker run takes one word for --entrypoint; the rest goes before the cmd.
        cmd = entrypoint[1:] + cmd
        entrypoint = entrypoint[0]
    return ContainerSpec(
        instance=context.instance,
        service=service.name,
        image=service.image,
        cmd=tuple(cmd),
        entrypoint=entrypoint,
        env=tuple(sorted(env.items())),
        mounts=tuple(m for f in fragments for m in f.mounts),
        ports=tuple(p for f in fragments for p in f.ports),
        labels=tuple(sorted(labels.items())),
        flags=tuple(_flags(options)),
        host_dirs=tuple(d for f in fragments for d in f.host_dirs),
        secrets=tuple(s for f in fragments for s in f.secrets),
        networks=tuple(dict.fromkeys([(network.of_instance(context.instance), network.alias(context.instance, service.name)),
                                      *(n for f in fragments for n in f.networks)])),
        replica=context.replica,
        placement=_placement(options.get("placement", {})),
    )


def _placement(placement):
    return (*(("constraint", c) for c in placement.get("constraints", ())),
            *(("spread", label) for label in placement.get("spread", ())))


def _flags(options):
    yield from ("--restart", options.get("restart", "unless-stopped"))
    if options.get("init", True):
        yield "--init"
    if options.get("privileged"):
        yield "--privileged"
    for key, flag in (
        ("user", "--user"),
        ("workdir", "--workdir"),
        ("memory", "--memory"),
        ("cpus", "--cpus"),
        ("stop_timeout", "--stop-timeout"),
    ):
        if key in options:
            yield from (flag, options[key])
    health = options.get("healthcheck")
    if health is False:
        yield "--no-healthcheck"
    elif health:
        yield from ("--health-cmd", health["cmd"])
        for key in ("interval", "timeout", "retries", "start_period"):
            if key in health:
                yield from (f"--health-{key.replace('_', '-')}", str(health[key]))


def _pairs(flag, items):
    return [arg for key, value in items for arg in (flag, f"{key}={value}")]


# docker run flags -> the template key that sets them, for saying what changed
_FLAG_KEYS = {
    "--restart": "restart",
    "--init": "init",
    "--privileged": "privileged",
    "--user": "user",
    "--workdir": "workdir",
    "--memory": "memory",
    "--cpus": "cpus",
    "--stop-timeout": "stop_timeout",
    "--no-healthcheck": "healthcheck",
}


def changes(recorded, spec):
    """What differs between a recorded spec (a dict) and a new one, in template words:
    ``["env.DB_URL changed", "image redis:6 -> redis:7", "memory changed"]``."""
    new = spec.to_dict()
    out = []
    for key in dict.fromkeys([*new, *recorded]):  # a placement is left out of either when there is none
        old_value, new_value = recorded.get(key), new.get(key)
        if old_value == new_value or key == "host_dirs":  # host_dirs follow the volumes
            continue
        if key == "image":
            out.append(f"image {old_value} -> {new_value}")
        elif key in ("env", "labels"):
            before, after = dict(old_value or ()), dict(new_value)
            exposed = {name[len(LABEL_EXPOSED):]: ref for name, ref in new["labels"] if name.startswith(LABEL_EXPOSED)}
            out += [
                f"endpoint {exposed[name]} moved ({key}.{name})" if key == "env" and name in exposed and name in before
                else f"{key}.{name} {'added' if name not in before else 'removed' if name not in after else 'changed'}"
                for name in sorted(before.keys() | after.keys())
                if before.get(name) != after.get(name)
            ]
        elif key == "flags":
            before, after = _flag_values(old_value or ()), _flag_values(new_value)
            out += [f"{k} changed" for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
        elif key == "networks":
            out += network.changes(old_value or (), new_value, dict(new["labels"]))
        else:
            out.append(f"{'volumes' if key == 'mounts' else key} changed")
    return out


def _flag_values(flags):
    """``["--restart", "always", "--init", ...]`` -> ``{"restart": ["always"], "init": []}``."""
    values, key = {}, None
    for flag in flags:
        if flag.startswith("--"):
            key = _FLAG_KEYS.get(flag, "healthcheck" if flag.startswith("--health-") else flag[2:])
            values.setdefault(key, [])
        else:
            values[key].append(flag)
    return values
