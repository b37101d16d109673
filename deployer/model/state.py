"""What a host knows about an instance: its state file, and the containers Docker runs.

Pure data and JSON, no I/O: the engine (remote/) reads and writes the files, this module decides
what they mean. A state file that is corrupt, or written by a newer deployer, is an
error naming the file, so nothing is ever overwritten on a guess.
"""

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from ..errors import DeployerError, TemplateError
from .schema import unit

FORMAT = 1
INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def check_instance_name(name):
    """Instance names become directory and container names, so they are strict.

    No dot: container names are ``<instance>.<service>``, and the first dot splits them.
    """
    if not isinstance(name, str) or not INSTANCE_NAME.fullmatch(name):
        raise TemplateError(
            f"invalid instance name {name!r}: use letters, digits, '_' and '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class ServiceState:
    """One service as deployed: its full spec (for diffs and rollback) and image id."""

    container: str
    config_hash: str
    image_id: str  # "" when the image was not on the host before docker run pulled it
    spec: dict

    @classmethod
    def of(cls, spec, image_id):
        return cls(spec.name, spec.config_hash, image_id or "", spec.to_dict())

    @property
    def image(self):
        return self.spec["image"]

    @property
    def ports(self):
        return tuple(self.spec["ports"])

    @property
    def volumes(self):
        """``host-dir:container-path[:ro]``, as given to docker run -v."""
        return tuple(f"{m['source']}:{m['target']}{':ro' if m['read_only'] else ''}" for m in self.spec["mounts"])


@dataclass(frozen=True)
class InstanceState:
    instance: str
    template: str  # the template file it was deployed from, as the deploying side named it
    release: int
    deployed_at: str  # ISO 8601, UTC
    deployed_by: str
    services: dict[str, ServiceState] = field(default_factory=dict)  # by unit: service, or replica (web.2)
    variables: dict[str, str] = field(default_factory=dict)  # the instance's own {placeholders}
    endpoints: dict[str, dict] = field(default_factory=dict)  # "svc:ep" -> address, host_port(s), port, wan
    secrets: dict[str, str] = field(default_factory=dict)  # secret name -> value (file is 0600)
    routes: dict[str, dict] = field(default_factory=dict)  # service -> its route: domains, port, health
    scale: dict[str, int] = field(default_factory=dict)  # service -> replicas, as `scale` set it (beats the template)

    def to_json(self):
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text, path):
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("format", FORMAT) > FORMAT:
                raise DeployerError(
                    f"written by a newer deployer (format {data['format']}, this one reads {FORMAT}): "
                    "upgrade deployer; nothing was changed",
                    file=path,
                )
            services = {name: ServiceState(**svc) for name, svc in data["services"].items()}
            return cls(
                instance=data["instance"],
                template=data["template"],
                release=int(data["release"]),
                deployed_at=data["deployed_at"],
                deployed_by=data["deployed_by"],
                services=services,
                variables=dict(data.get("variables", {})),
                endpoints=dict(data.get("endpoints", {})),
                secrets=dict(data.get("secrets", {})),
                routes=dict(data.get("routes", {})),
                scale=dict(data.get("scale", {})),
            )
        except DeployerError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError) as e:
            raise DeployerError(f"corrupt state file ({type(e).__name__}: {e}); nothing was changed", file=path) from None

    def record(self, actions, template_text, note="", failed=None):
        """This state as a line of history.jsonl: the release, what changed, every spec."""
        return {
            "release": self.release,
            "time": self.deployed_at,
            "by": self.deployed_by,
            "template": self.template,
            "template_sha256": hashlib.sha256(template_text.encode()).hexdigest()[:16],
            "template_text": template_text,
            "note": note,
            "variables": self.variables,
            "endpoints": self.endpoints,
            "secrets": self.secrets,
            "routes": self.routes,
            **({"scale": self.scale} if self.scale else {}),
            "result": f"failed at {failed}" if failed else "ok",
            "changes": {a.service: f"{a.kind}: {a.reason}" for a in actions if a.kind != "keep"},
            "services": {name: asdict(svc) for name, svc in self.services.items()},
        }

    def applied(self, specs, removed, images, **release):
        """This state after the given specs were started and the named services removed;
        ``release`` gives the new release's fields (and its variables and secrets)."""
        services = {n: s for n, s in self.services.items() if n not in removed}
        services.update({spec.unit: ServiceState.of(spec, images.get(spec.image)) for spec in specs})
        return InstanceState(**{**asdict(self), "services": services, **release})


@dataclass(frozen=True)
class Container:
    """A container Docker runs with our labels, as ``docker inspect`` described it."""

    name: str
    service: str
    running: bool
    status: str
    image: str
    image_id: str
    config_hash: str
    created: str
    release: int
    ports: tuple[str, ...]
    health: str = ""  # its healthcheck's verdict: healthy, starting, unhealthy ("": none)
    replica: int = 0  # its replica number (replicas: N > 1); 0: the service's one container

    @property
    def unit(self):
        """The service, or the replica (``web.2``) it is a container of: a plan's step."""
        return unit(self.service, self.replica)

    @property
    def condition(self):
        """``running``, ``exited``... with the healthcheck's verdict, if it has one and runs:
        ``running (healthy)``. A container can run and serve nothing; its health says so."""
        return f"{self.status} ({self.health})" if self.health and self.running else self.status

    @classmethod
    def from_inspect(cls, data):
        labels = data["Config"].get("Labels") or {}
        bindings = (data.get("NetworkSettings") or {}).get("Ports") or {}
        return cls(
            name=data["Name"].lstrip("/"),
            service=labels.get("deployer.service", ""),
            running=bool(data["State"].get("Running")),
            status=data["State"].get("Status", "unknown"),
            health=(data["State"].get("Health") or {}).get("Status", ""),
            image=data["Config"].get("Image", ""),
            image_id=data.get("Image", ""),
            config_hash=labels.get("deployer.config-hash", ""),
            created=data.get("Created", ""),
            release=int(labels.get("deployer.release", 0) or 0),
            replica=int(labels.get("deployer.replica", 0) or 0),
            ports=tuple(
                f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{port}"
                for port, binds in sorted(bindings.items())
                for b in binds or ()
            ),
        )


def image_ids(images, refs):
    """The id of the image each reference names, among ``docker inspect`` results of images:
    by tag (``redis`` is ``redis:latest``, ``docker.io/library/redis:7`` is ``redis:7``),
    by digest, or by id. A reference not found is left out (not on the host)."""
    out = {}
    for ref in refs:
        want = normal_ref(ref)
        for image in images:
            names = {normal_ref(n) for n in (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])}
            if want in names or image["Id"] in (ref, f"sha256:{ref}"):
                out[ref] = image["Id"]
                break
    return out


def normal_ref(ref):
    """An image reference as docker lists it: a tag (latest) unless a digest, no docker.io/library/."""
    name, at, digest = ref.partition("@")
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    for prefix in ("docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name + at + digest
