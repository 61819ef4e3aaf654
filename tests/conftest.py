import pytest

from airsync import log


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs():
    # In-process jobs log through structlog; keep test output to warnings and errors.
    log.setup("warning", "console")
