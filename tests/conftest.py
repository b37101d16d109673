"""Shared pytest configuration. Integration fixtures live in tests/integration/conftest.py.

``DEPLOYER_DAEMON=0`` for every command the tests run, so the commands of the suite run
in their own process, as without a daemon, and no test leans on one started by another
(or by another user of the machine). The daemon's own tests (test_daemon.py), its smoke
test of the whole CLI (test_daemon_table.py) and the benchmark set it back for theirs:
both paths are tested.
"""

import os

os.environ["DEPLOYER_DAEMON"] = "0"
