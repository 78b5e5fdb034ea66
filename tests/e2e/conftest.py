"""Fixtures for end-to-end tests: the real broker and database started by ./run_tests.sh."""
from __future__ import annotations

import os
import socket

import pytest

from common.config import load_env
from common.db import Database, dsn_from, migrate
from EV_Central_Server.central.repository import PostgresRepository
from tests.e2e.harness import Stack


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker() -> str:
    """Kafka bootstrap address of the test broker; fails fast when it is not running."""
    address = os.environ.get("EVC_TEST_BROKER", "127.0.0.1:19092")
    if not _reachable(address):
        pytest.fail(f"Kafka broker {address} is not reachable: run the tests with ./run_tests.sh")
    return address


@pytest.fixture(scope="session")
def repo():
    """CENTRAL's repository on the test database (migrated)."""
    load_env()
    if not os.environ.get("EVC_DB_PORT"):
        pytest.fail("PostgreSQL settings missing (EVC_DB_ENV_FILE): run the tests with ./run_tests.sh")
    db = Database.connect(dsn_from(None), attempts=5)
    migrate(db)
    yield PostgresRepository(db)
    db.close()


@pytest.fixture
def stack(broker, repo):
    """A fresh CENTRAL group and room for CPs and drivers; everything is stopped afterwards."""
    env = dict(os.environ)
    s = Stack(broker, repo, env)
    yield s
    s.stop_all()
