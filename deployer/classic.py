"""The classic Fabric 1 call ``task:arg,key=value``, and a command after ``--``, for plain
``fab`` and the ``deployer`` command alike.

Fabric 3 reads neither: ``fab deploy:app.yaml,instance=c1`` is "No idea what ...", and the
words after ``--`` reach a task joined into one string (invoke's remainder), their
quoting lost, or run on the host itself as Fabric's own remainder command. Both are
settled in a Program's ``parse_tasks`` step, the one moment the task collection is loaded
and the task tokens are not parsed yet:

- a token naming a task of the collection before its ``:`` becomes that task's flags:
  values in the order of the task's parameters, or ``key=value``; ``\\,`` is a literal
  comma; booleans are ``true/false/yes/no/1/0``. Every other token is left alone, and so
  is a flag's value (``--command logs:x`` stays a value);
- a task marked ``after_dashes(parameter)`` (deployer's run and exec) gets the words
  after the first ``--`` of the program's argv (the process's own, ``sys.argv``, under
  ``fab``) as they were given, for its parameter; Fabric then runs nothing on the host.

The ``deployer`` Program calls ``parse_tasks`` from its own. Plain ``fab`` has no hook
for it, so importing ``deployer.tasks`` (which this repository's fabfile and a user's do)
wraps the running ``fab`` Program's ``parse_tasks`` (``attach_to_fab``): ``fab`` imports
the fabfile while it loads the collection, just before it parses the tasks. Tasks of the
user's own fabfile so take the classic form too.
"""

import inspect
import re
import shlex
import sys

from invoke import Exit

from .errors import EXIT_USAGE

TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def after_dashes(parameter):
    """Mark a task whose ``parameter`` (a string, split as a shell would) receives the
    words after ``--``: ``fab run INSTANCE SERVICE -- sh -c 'echo a b'``."""

    def mark(task):
        task.after_dashes = parameter
        return task

    return mark


def gathers(parameter):
    """Mark a task whose ``parameter`` receives its ``NAME=VALUE`` words, space-separated:
    ``deployer scale customer1 web=5 worker=1`` (invoke would take each for a task)."""

    def mark(task):
        task.gathers = parameter
        return task

    return mark


def attach_to_fab():
    """Under plain ``fab`` (or ``python -m fabric``), have its running Program read the
    classic form and ``--`` as the ``deployer`` command does. Nothing happens elsewhere:
    only ``fab`` has imported ``fabric.main``, whose ``program`` is the one running."""
    main = sys.modules.get("fabric.main")
    program = getattr(main, "program", None)
    if program is None or getattr(program.parse_tasks, "reads_classic", False):
        return
    parse = program.parse_tasks

    def parse_tasks():
        return parse_tasks_of(program, parse)

    parse_tasks.reads_classic = True
    program.parse_tasks = parse_tasks


def parse_tasks_of(program, parse):
    """A Program's parse_tasks (``parse``: invoke's own) with classic calls and ``--``;
    ``TASK --help`` is ``--help TASK`` (invoke would take ``--help`` for a positional value)."""
    program.core.unparsed = translate(program.collection, program.core.unparsed)
    asked = _help_asked(program.collection, program.core.unparsed)
    if asked:  # nothing else is parsed: the help is all that is printed
        program.args.help.value, program.core.unparsed = asked, []
    parse()
    _hand_over_dashes(program)


def _help_asked(collection, tokens):
    """The task whose name a ``--help``/``-h`` follows (None: no help asked so)."""
    current = None
    for token in tokens:
        if token in ("--help", "-h") and current is not None:
            return current
        if not token.startswith("-") and _task(collection, token) is not None:
            current = token
    return None


def translate(collection, tokens):
    """The task tokens with every classic call turned into the task's name and flags."""
    out, value_next, current, gathered = [], False, None, None
    for token in tokens:
        if value_next or token.startswith("-"):
            value_next = not value_next and current is not None and _takes_value(current, token)
            out.append(token)
            continue
        if getattr(current, "gathers", None) and "=" in token:  # gathers(): NAME=VALUE words, one flag
            if gathered is None:
                gathered = len(out)
                out.append(f"--{current.gathers.replace('_', '-')}={token}")
            else:
                out[gathered] += f" {token}"
            continue
        name, colon, rest = token.partition(":")
        task = _task(collection, name if colon else token)
        if task is not None:
            current, gathered = task, None
        out += _flags(task, name, rest, token) if colon and task is not None else [token]
    return out


def _task(collection, name):
    names = collection.task_names
    if name and (name in names or any(name in aliases for aliases in names.values())):
        return collection[name]
    return None


def _parameters(task):
    """name -> default (``inspect.Parameter.empty``: none), the context left out, in order."""
    return {p.name: p.default for p in list(inspect.signature(task.body).parameters.values())[1:]}


def _is_flag(task, name, default):
    return isinstance(default, bool) and name not in task.optional


def _takes_value(task, token):
    """Whether ``--name`` (no ``=``) is a flag of the task that takes the next token."""
    if "=" in token or not token.startswith("--"):
        return False
    name = token[2:].replace("-", "_")
    parameters = _parameters(task)
    return name in parameters and not _is_flag(task, name, parameters[name]) and name not in task.incrementable


def _flags(task, name, rest, token):
    """``deploy:t.yaml,instance=c1`` -> ``deploy --template=t.yaml --instance=c1``."""
    parameters = _parameters(task)
    positional = iter(parameters)
    args = [name]
    for part in (p.replace("\\,", ",") for p in _UNESCAPED_COMMA.split(rest) if p):
        key, eq, value = part.partition("=")
        if eq:
            key = key.replace("-", "_")
            if key not in parameters:
                raise Exit(f"error: {token!r}: {name} has no parameter {key!r} ({', '.join(parameters)})",
                           code=EXIT_USAGE)
        else:
            key, value = next(positional, None), part
            if key is None:
                raise Exit(f"error: {token!r}: {name} takes at most {len(parameters)} values "
                           f"({', '.join(parameters)})", code=EXIT_USAGE)
        flag = "--" + key.replace("_", "-")
        default = parameters.get(key)
        if not _is_flag(task, key, default):
            args.append(f"{flag}={value}")
        elif value.lower() in TRUE:
            args.append(flag)
        elif value.lower() not in FALSE:
            raise Exit(f"error: {token!r}: {key} is true or false (true/false, yes/no, 1/0), got {value!r}",
                       code=EXIT_USAGE)
        elif default is True:
            args.append(f"--no-{key.replace('_', '-')}")
    return args


def _hand_over_dashes(program):
    """The words after ``--`` to each task that takes them, as given (invoke's remainder
    joined them with spaces); the remainder is then no command for the host."""
    argv = list(program.argv)
    if "--" not in argv:
        return
    words = argv[argv.index("--") + 1 :]
    taking = False
    for context in program.tasks:
        parameter = getattr(program.collection[context.name], "after_dashes", None)
        if parameter is None:
            continue
        argument = context.args[parameter]
        if argument.got_value:
            raise Exit(f"error: {context.name}: give the command after -- or as --{parameter}, not both",
                       code=EXIT_USAGE)
        argument.value = shlex.join(words)
        taking = True
    if taking:
        program.core.remainder = ""
