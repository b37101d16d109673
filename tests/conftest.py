"""Shared pytest configuration. Integration fixtures live in tests/integration/conftest.py.

tests/ goes on sys.path here, so that every conftest and test module imports the harness
(tests/harness/: sshd, Docker engines, etcd, polling, processes) as ``harness``, the name
bench/run imports it by. pytest's default import mode would add it too; this says so.

``DEPLOYER_DAEMON=0`` for every command the tests run, so the commands of the suite run
in their own process, as without a daemon, and no test leans on one started by another
(or by another user of the machine). The daemon's own tests (test_daemon.py), its smoke
test of the whole CLI (test_daemon_table.py) and the benchmark set it back for theirs:
both paths are tested.
"""

import os
import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

os.environ["DEPLOYER_DAEMON"] = "0"
