"""The scripts that build a git service's image on the host (``sh/build.sh``), from the
app's tar streamed on the script's stdin."""

from ..model import network
from .scripts import assign, call, instance as about

USES = ("build", "network")


def build_script(instance, tag, source, subnets="10.211.0.0/16"):
    """A Dockerfile app goes into ``docker build``; a slug app into the slug builder, and its
    slug into an image FROM the runner. The slug builder, a container of the instance, runs
    on the instance's private network (made here on a first deploy; ``subnets``: the
    setting deployer.subnets). A Dockerfile's RUN steps stay on the engine's build network:
    BuildKit takes no network of a user's (only default, host or none)."""
    if source.slug:
        own = network.of_instance(instance)
        return "\n".join([about(instance), assign(DPL_SUBNETS=subnets),
                          call("dpl_network", *network.create_args(own)) + " || exit 1",
                          call("dpl_slug_build", source.service, tag, source.slug.builder, source.slug.runner, own)
                          + " || exit 1"])
    args = ["--force-rm", "--label", f"deployer.instance={instance}", "-t", tag, "-f", source.dockerfile]
    args += [arg for key, value in source.build_args for arg in ("--build-arg", f"{key}={value}")]
    return call("dpl_docker_build", tag, *args) + " || exit 1"
