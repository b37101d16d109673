"""Fixtures for the reliability tests: the integration fixtures (a real sshd, the real
Docker engine, the deployer CLI), re-used, plus a few of their own.

``pytest_plugins`` is refused in a conftest below the root, and every conftest is
imported under the one name ``conftest``, so the integration conftest is loaded here
from its file under a name of its own and its fixtures are re-exported. Those fixtures
are defined again for this directory: this directory's tests get an sshd of their own.
"""

import importlib.util
import secrets
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))  # its conftest imports `support`

_spec = importlib.util.spec_from_file_location("deployer_integration_fixtures", INTEGRATION / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

from support import remove_instance  # noqa: E402  (needs the path above)

docker_engine = _fixtures.docker_engine
busybox_image = _fixtures.busybox_image
sshd = _fixtures.sshd
deployer_cli = _fixtures.deployer_cli
unique_instance = _fixtures.unique_instance
app = _fixtures.app


@pytest.fixture(scope="session")
def session_cli(sshd, docker_engine, busybox_image):
    """deployer_cli for module- and session-scoped fixtures (same signature)."""
    return _fixtures._runner("deployer", sshd, _fixtures._local_env(sshd))


@pytest.fixture(scope="module")
def module_instance():
    """A throwaway instance name shared by one module's tests; its containers go at the end."""
    name = f"m{secrets.token_hex(4)}"
    yield name
    remove_instance(name)
