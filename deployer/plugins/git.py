"""``git``: the service's image is built from a git repo (ops/build.py).

The build happens before the deploy's plan (it needs the host); by render time the
service's image is the built image's tag, so this plugin adds nothing to the container.
"""

from ..model.schema import git_source
from .base import Fragment


class GitPlugin:
    name = "git"
    keys = {"git": git_source}

    def fragment(self, service, context):
        return Fragment()


plugin = GitPlugin()
