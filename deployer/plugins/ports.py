"""``ports``: published ports, in docker run's ``-p`` forms."""

from ..model.schema import port, sequence
from .base import Fragment


class PortsPlugin:
    name = "ports"
    keys = {"ports": sequence(port)}

    def fragment(self, service, context):
        return Fragment(ports=tuple(service.options.get("ports", ())))


plugin = PortsPlugin()
