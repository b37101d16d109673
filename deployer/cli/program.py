"""The ``deployer`` command: Fabric's own CLI (same flags as ``fab``) with deployer's
tasks built in, plus the classic Fabric 1 form ``task:arg,key=value``, and a command
after ``--`` for ``run`` and ``exec``::

    deployer -H web1 deploy templates/app.yaml --instance customer1
    deployer -H web1 deploy:templates/app.yaml,instance=customer1
    deployer -H web1 run customer1 app -- rake db:migrate
"""

import inspect
import os
import re

from fabric import Config
from fabric.main import Fab
from invoke import Argument

from .. import __version__
from ..executor import ParallelExecutor
from ..tasks import ns

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


class Program(Fab):
    command = ()

    def normalize_argv(self, argv):
        """Words after ``--`` are the command of ``run``/``exec``, kept as a list (invoke
        would join them into one string, and fab would run that on the host itself)."""
        super().normalize_argv(argv)
        if "--" in self.argv:
            at = self.argv.index("--")
            self.argv, self.command = self.argv[:at], self.argv[at + 1 :]

    def core_args(self):
        return super().core_args() + [
            Argument(names=("parallel",), kind=int, help="Deploy to at most this many hosts at once (default 10)."),
            Argument(names=("fail-fast",), kind=bool, help="Start no more hosts once one has failed."),
            Argument(names=("q", "quiet"), kind=bool, help="Print only errors."),
            Argument(names=("v", "verbose"), kind=bool, help="Show each docker command the host runs (secrets as ***)."),
        ]

    def update_config(self):
        super().update_config()
        given = {
            "command": list(self.command) or None,
            "parallel": self.args.parallel.value,
            "fail_fast": self.args["fail-fast"].value or None,
            "quiet": self.args.quiet.value or None,
            "verbose": self.args.verbose.value or None,
        }
        # a modification: merged deeply over the collection's deployer defaults
        self.config["deployer"] = {key: value for key, value in given.items() if value is not None}

    def parse_collection(self):
        """A bundled namespace makes invoke skip ``./fabric.yaml``; load it as fab would."""
        super().parse_collection()
        self.config.set_project_location(os.getcwd())
        self.config.load_project()

    def parse_tasks(self):
        """Rewrite classic ``task:args`` tokens into flags before invoke parses them."""
        self.core.unparsed = [arg for token in self.core.unparsed for arg in self.classic(token)]
        super().parse_tasks()

    def classic(self, token):
        """``deploy:t.yaml,instance=c1`` -> ``deploy --template=t.yaml --instance=c1``.

        Only a token naming a known task before its colon is touched; ``\\,`` is a
        literal comma. Positional values map to the task's parameters in order.
        """
        name, colon, rest = token.partition(":")
        if not colon or name not in self.collection.task_names:
            return [token]
        task = self.collection[name]
        arguments = task.get_arguments()
        positional = iter(sorted(arguments, key=lambda a: _order(task, a.name)))
        args = [name]
        for part in (p.replace("\\,", ",") for p in _UNESCAPED_COMMA.split(rest) if p):
            key, eq, value = part.partition("=")
            if not eq:
                argument = next(positional, None)
                if argument is None:
                    return [token]  # too many values: let invoke say what is wrong
                key, value = argument.name, part
            argument = next((a for a in arguments if a.name == key.replace("-", "_")), None)
            flag = "--" + key.replace("_", "-")
            if argument is not None and argument.kind is bool:
                if value.lower() in ("1", "true", "yes", "on"):
                    args.append(flag)
            else:
                args.append(f"{flag}={value}")
        return args


def _order(task, name):
    """A parameter's place in the task function's signature (Fabric 1 filled them in order)."""
    return list(inspect.signature(task.body).parameters).index(name)


program = Program(
    name="deployer",
    binary="deployer",
    version=__version__,
    namespace=ns,
    executor_class=ParallelExecutor,
    config_class=Config,
)


def main():
    program.run()
