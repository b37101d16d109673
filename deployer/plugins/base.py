"""The Plugin protocol and the fragment a plugin returns.

A plugin is pure: it reads a service (and the render context) and returns a Fragment.
It never runs commands; anything the host must do (such as creating a volume's
directory) is data in the fragment, done by the host when it applies the plan.
"""

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Mount:
    source: str  # a host directory; with a driver, the named volume's name
    target: str
    read_only: bool = False
    driver: str = ""  # a named volume of this volume driver (``volume_driver``), not a host directory
    options: tuple[tuple[str, str], ...] = ()  # the driver's options (``volume_opts``)

    def volume_arg(self, source=None, labels=()):
        """``--mount``'s value mounting this as a named volume (``source``: its own name unless
        given), ``labels`` on it, of its driver (Docker's ``local`` when it has none); each
        field quoted as CSV where it holds a comma or quote."""
        fields = ["type=volume", f"source={source or self.source}", f"target={self.target}",
                  *(f"volume-label={key}={value}" for key, value in labels),
                  *([f"volume-driver={self.driver}"] if self.driver else []),
                  *(f"volume-opt={key}={value}" for key, value in self.options), *["readonly"] * self.read_only]
        return ",".join('"' + f.replace('"', '""') + '"' if "," in f or '"' in f else f for f in fields)


@dataclass(frozen=True)
class Fragment:
    """What one plugin adds to one container: merged by spec.py, in plugin order."""

    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    host_dirs: tuple[str, ...] = ()  # directories the host creates before starting the container
    secrets: tuple[str, ...] = ()  # env names whose values are secrets (masked in output)
    networks: tuple[tuple[str, str], ...] = ()  # (network, alias or "") the container joins besides its instance's


@dataclass(frozen=True)
class RenderContext:
    """What a plugin may know besides the service: which instance, where volumes live."""

    instance: str
    volume_dir: str
    settings: Mapping[str, Any]  # the template's capitalised settings, validated
    secrets: Mapping[str, str] = field(default_factory=dict)  # secret name -> value
    endpoints: Mapping[str, Any] = field(default_factory=dict)  # "svc:ep" / "inst/svc:ep" -> discovery.Endpoint
    replica: int = 0  # the replica rendered (replicas: N > 1), from 1; 0: the service's one container


class Plugin(Protocol):
    name: str
    keys: Mapping[str, Any]  # template key -> voluptuous validator of its value

    def fragment(self, service, context: RenderContext) -> Fragment:
        """Called for every service, whether it uses the plugin's keys or not."""
