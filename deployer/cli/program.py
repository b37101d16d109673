"""The ``deployer`` command: Fabric's own CLI (same flags as ``fab``) with deployer's
tasks built in. It reads the classic Fabric 1 form ``task:arg,key=value`` and a command
after ``--`` for ``run`` and ``exec`` as plain ``fab`` does with deployer's tasks
(``deployer/classic.py``)::

    deployer -H web1 deploy templates/app.yaml --instance customer1
    deployer -H web1 deploy:templates/app.yaml,instance=customer1
    deployer -H web1 run customer1 app -- rake db:migrate
"""

import os

from fabric import Config
from fabric.main import Fab
from invoke import Argument

from .. import __version__, classic
from ..executor import ParallelExecutor
from ..tasks import ns


class Program(Fab):
    def core_args(self):
        return super().core_args() + [
            Argument(names=("engine",), help="docker (the host's engine, default) or swarm (services through a manager)."),
            Argument(names=("parallel",), kind=int, help="Deploy to at most this many hosts at once (default 10)."),
            Argument(names=("fail-fast",), kind=bool, help="Start no more hosts once one has failed."),
            Argument(names=("q", "quiet"), kind=bool, help="Print only errors."),
            Argument(names=("v", "verbose"), kind=bool, help="Show each docker command the host runs (secrets as ***)."),
        ]

    def update_config(self):
        super().update_config()
        given = {
            "engine": self.args.engine.value,
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
        """Classic ``task:args`` tokens and ``--``, as under plain ``fab`` (classic.py)."""
        classic.parse_tasks_of(self, super().parse_tasks)


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
