"""The scripts that build a git service's image on the host (``sh/build.sh``), from the
app's tar streamed on the script's stdin."""

from .scripts import call, instance as about

USES = ("build",)


def build_script(instance, tag, source):
    """A Dockerfile app goes into ``docker build``; a slug app into the slug builder, and its
    slug into an image FROM the runner."""
    if source.slug:
        return f"{about(instance)}\n" + call("dpl_slug_build", source.service, tag, source.slug.builder,
                                            source.slug.runner) + " || exit 1"
    args = ["--force-rm", "--label", f"deployer.instance={instance}", "-t", tag, "-f", source.dockerfile]
    args += [arg for key, value in source.build_args for arg in ("--build-arg", f"{key}={value}")]
    return call("dpl_docker_build", tag, *args) + " || exit 1"
