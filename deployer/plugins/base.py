"""The Plugin protocol and the fragment a plugin returns.

A plugin is pure: it reads a service (and the render context) and returns a Fragment.
It never runs commands; anything the host must do (such as creating a volume's
directory) is data in the fragment, done by the host when it applies the plan.
"""

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


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
