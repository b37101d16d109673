"""deployer's speed benchmark (run it with bench/run; its usage is in bench/main.py).

- ``main``: the command line, the checks before a run, the run itself and its cleanup
- ``tools``: the rows of the table: how deployer, compose, Ansible and the floors deploy
- ``scenarios``: what is measured (times, SSH round trips, containers, planning)
- ``hosts``: the 10-hosts row: nine more Docker engines and sshds
- ``report``: the tables and targets printed at the end

The loopback sshd and the extra Docker engines come from the tests' harness
(tests/harness/), which bench/run puts on sys.path.
"""
