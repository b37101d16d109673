"""Host scripts: the shell sources in ``sh/`` and how a script is put together from them.

A script is the functions it uses (``sh/*.sh``, package data, linted by shellcheck) and a
body of calls to them. Values enter only as quoted arguments or assignments (``call``,
``assign``), never spliced into shell source. Scripts go over stdin, not argv, so a large
template meets no argument limit, and the body is one ``{ ...; }`` group, parsed before
it runs, with stdin closed, so no command can swallow the rest of the script (a deploy's
second turn reads fd 3, stderr is also fd 4 for notes whatever a function redirected).
"""

import shlex
from functools import cache
from importlib.resources import files

SOURCES = files(__package__) / "sh"


@cache
def source(name):
    """The text of ``sh/NAME.sh``; ``PACKAGE:NAME`` is another package's (``deployer.swarm:swarm``)."""
    package, _, name = name.rpartition(":")
    return ((files(package) / "sh" if package else SOURCES) / f"{name}.sh").read_text()


def q(value):
    return shlex.quote(str(value))


def join(args):
    return " ".join(q(a) for a in args)


def call(function, *args):
    """One call of a shell function with quoted arguments."""
    return " ".join([function, *(q(a) for a in args)])


def assign(**values):
    """Quoted assignments of script-wide constants, one line."""
    return " ".join(f"{name}={q(value)}" for name, value in values.items())


def instance(name):
    """The constants of a script about one instance: I, and D its directory."""
    return f'{assign(I=name)}; D="$S/instances/$I"'


def script(boundary, body, uses=(), state_dir="", volume_dir="", verbose=False, docker_timeout=120):
    """The whole script: framing, the library and the sources in ``uses``, then the body,
    in a group reading nothing of stdin, and ``exit`` with its status: ``sh -s`` reads its
    script from stdin, where the client may send more (a build's tar, a plan), which must
    never be read as commands, whatever a step left unread."""
    parts = ["library", *(["verbose"] if verbose else []), *uses]
    constants = assign(B=boundary, cfg_state_dir=state_dir, cfg_volume_dir=volume_dir,
                       DPL_DOCKER_TIMEOUT=int(docker_timeout))
    return (
        "exec 3<&0 4>&2\n{\n"
        f"{constants}\n"
        + "".join(source(name) for name in parts)
        + f"{body}\n}} </dev/null\nexit\n"
    )
