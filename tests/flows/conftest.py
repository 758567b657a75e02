"""Prefect for the flow tests: one test harness per session, started only by tests that ask."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """Prefect's test harness (a temporary SQLite database and API server); yields the API URL.

    Started once per session (about 13 s) and only for tests that run the engine; the startup
    timeout is raised from 30 s because a cold start on a busy 2-core machine can exceed it.
    """
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())
