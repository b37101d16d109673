"""``route``: the service is served by the host's router at its domains (model/route.py).

The container publishes nothing for it: the router joins the instance's network and sends
requests to the container's container port. The port is a label on the container, so a
route to another port replaces it (domains and health are the route table's alone).
"""

from ..model.schema import route
from .base import Fragment

LABEL_ROUTE = "deployer.route"


class RoutePlugin:
    name = "route"
    keys = {"route": route}

    def fragment(self, service, context):
        given = service.options.get("route")
        return Fragment(labels={LABEL_ROUTE: given["port"]} if given else {})


plugin = RoutePlugin()
