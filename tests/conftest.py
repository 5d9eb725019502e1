import dataclasses
import secrets
import time

import pytest
from cryptography.fernet import Fernet

from service.settings import Settings

WORKSHOP = "Bennys Auto"


@pytest.fixture
def settings(tmp_path):
    """Settings for one instance with its files in a temporary folder."""
    return Settings(
        workshop=WORKSHOP, port=5001, api_token=secrets.token_urlsafe(16),
        secret_key=Fernet.generate_key().decode(), erp_username="admin",
        erp_password="default-erp-secret", queue_dir=str(tmp_path / "task_queue"),
        log_dir=str(tmp_path / "logs"), retry_base_seconds=0.01, retry_max_seconds=0.05,
        page_load_timeout=0.05,  # the least wait after a save with no answer (fake ERPs)
        rate_limit="1000000/minute",  # tests post hundreds at once; test_rate_limit.py sets its own
    )


def replace(settings, **changes):
    return dataclasses.replace(settings, **changes)


def wait_for(predicate, timeout=10.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def erp():
    """A hand-written fake ERP (tests/fakes.py) for unit tests of the instance."""
    from fakes import FakeIntegration

    return FakeIntegration()


@pytest.fixture
def instance(settings, erp):
    """One workshop's instance on real SQLite files, writing into the fake ``erp``;
    its worker is not started."""
    from service.instance import Instance

    inst = Instance(settings, make_integration=lambda: erp)
    yield inst
    inst.close(worker_timeout=10)


@pytest.fixture
def client(instance):
    """A Flask test client of ``instance``'s API, sending its token."""
    from service.app import create_app

    client = create_app(instance).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {instance.settings.api_token}"
    return client
