"""Lets plain ``fab`` run deployer's tasks from the repo root: ``fab -H web1 deploy ...``."""

from deployer.tasks import ns  # noqa: F401  (fab loads the collection named ns)
