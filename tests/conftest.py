"""Shared pytest configuration. Integration fixtures live in tests/integration/conftest.py.

tests/ goes on sys.path here, so that every conftest and test module imports the harness
(tests/harness/: sshd, Docker engines, etcd, polling, processes) as ``harness``, the name
bench/run imports it by. pytest's default import mode would add it too; this says so."""

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
