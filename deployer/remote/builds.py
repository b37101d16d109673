"""The scripts that build a git service's image on the host (``sh/build.sh``), from the
app's tar streamed on the script's stdin."""

from ..model import network
from .scripts import assign, call, instance as about

USES = ("build", "network")


def build_script(instance, tag, source, subnets="10.211.0.0/16", push=False):
    """A Dockerfile app goes into ``docker build``; a slug app into the slug builder, and its
    slug into an image FROM the runner. The slug builder, a container of the instance, runs
    on the instance's private network (made here on a first deploy; ``subnets``: the
    setting deployer.subnets). A Dockerfile's RUN steps stay on the engine's build network:
    BuildKit takes no network of a user's (only default, host or none).

    With ``push`` (a swarm's manager) the image is then pushed to the registry its tag
    names, in the same script, and the slug builder runs on the engine's default bridge:
    there the instance's network is the overlay its services join, made by the deploy."""
    head, steps = [], []
    if source.slug:
        own = "bridge" if push else network.of_instance(instance)
        head = [about(instance), assign(DPL_SUBNETS=subnets)]
        steps += [] if push else [call("dpl_network", *network.create_args(own))]
        steps += [call("dpl_slug_build", source.service, tag, source.slug.builder, source.slug.runner, own)]
    else:
        args = ["--force-rm", "--label", f"deployer.instance={instance}", "-t", tag, "-f", source.dockerfile]
        args += [arg for key, value in source.build_args for arg in ("--build-arg", f"{key}={value}")]
        steps += [call("dpl_docker_build", tag, *args)]
    steps += [call("dpl_push", tag)] if push else []
    return "\n".join(head + [step + " || exit 1" for step in steps])
