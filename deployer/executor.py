"""Several hosts at once: a Fabric Executor that runs a task's per-host calls in threads.

Fabric runs ``-H a,b,c`` one host after another. This executor runs the calls of one task
for all its hosts at once (at most ``deployer.parallel``, default 10), each with its own
Connection and its own copy of the config. A host's output is kept together and printed
when it is done; a failing host does not stop the others (unless ``deployer.fail_fast``);
the end is one summary table, and the exit code is the first failure's.

With ``--json`` every host's document is collected into one: ``{"hosts": [...]}``.
The ``deployer`` command uses it; plain ``fab`` does when ``fabric.yaml`` says
``tasks: {executor_class: deployer.executor.ParallelExecutor}``. (The words after ``--``
of run and exec are no concern of the executor's: deployer/classic.py hands them over.)
"""

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from fabric import Executor
from invoke import Exit

from .cli import output
from .errors import EXIT_INTERRUPTED, DeployerError
from .settings import Settings


@dataclass
class Outcome:
    host: str
    code: int
    message: str
    text: str  # what the task printed
    seconds: float
    result: object


class ParallelExecutor(Executor):
    def execute(self, *tasks):
        """Run the tasks; Ctrl-C ends the run at once with exit code 130 and a line saying
        what that means (invoke would exit 1 silently). Threads still talking to hosts go
        with the process: a deploy's plan that reached its host runs to its end there (the
        host ignores the hang-up), a deploy still waiting or planning changes nothing."""
        try:
            return self._execute(tasks)
        except KeyboardInterrupt:
            output.interrupted()
            os._exit(EXIT_INTERRUPTED)  # not sys.exit: it would wait for the hosts' threads

    def _execute(self, tasks):
        calls = self.expand_calls(self.normalize(tasks))
        results = {}
        for task, group in itertools.groupby(calls, key=lambda call: call.task):
            group = list(group)
            if len(group) == 1 or not hasattr(group[0], "init_kwargs"):
                for call in group:
                    results[task] = self._call(call)
            else:
                results[task] = self._parallel(group)
        return results

    def _parallel(self, calls):
        try:
            settings = Settings.of(self.config)
        except DeployerError as e:
            raise Exit(f"error: {e}", code=e.exit_code) from None
        workers, fail_fast = settings.parallel or 10, settings.fail_fast
        as_json = bool(calls[0].kwargs.get("json"))
        stop = threading.Event()
        outcomes = [None] * len(calls)
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = {pool.submit(self._captured, call, stop, fail_fast): i for i, call in enumerate(calls)}
            for future in as_completed(futures):
                outcomes[futures[future]] = outcome = future.result()
                if not as_json:
                    output.host_block(outcome)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # all done, or interrupted: no waiting
        if as_json:
            output.hosts_json(outcomes)
        else:
            output.summary(outcomes)
        failed = [o for o in outcomes if o.code]
        if failed:
            raise Exit(code=failed[0].code)
        return [o.result for o in outcomes]

    def _captured(self, call, stop, fail_fast):
        """One host's call, its output captured, its failure turned into an Outcome (which,
        with fail_fast, stops the hosts not started yet: set here, before a worker is free)."""
        host = _host_name(call.init_kwargs)
        if stop.is_set():
            return Outcome(host, 1, "not started: another host failed (--fail-fast)", "", 0.0, None)
        started = time.monotonic()
        with output.captured(host) as buffer:
            try:
                result, code, message = self._call(call), 0, ""
            except Exit as e:
                result, code, message = None, e.code, e.message or ""
            except Exception as e:  # a host must never take the others down with it
                result, code, message = None, 1, f"error: host {host}: {type(e).__name__}: {e}"
        if code and fail_fast:
            stop.set()
        return Outcome(host, code, message, buffer.getvalue(), time.monotonic() - started, result)

    def _call(self, call):
        config = self.config.clone()
        config.load_collection(self.collection.configuration(call.called_as))
        config.load_shell_env()
        return call.task(call.make_context(config), *call.args, **call.kwargs)


def _host_name(init_kwargs):
    user = init_kwargs.get("user")
    port = init_kwargs.get("port")
    return f"{user + '@' if user else ''}{init_kwargs['host']}{':' + str(port) if port else ''}"
