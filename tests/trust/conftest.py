"""Fixtures for the checksum-database tests: the real Go test database, built once per session."""

from __future__ import annotations

import pytest

from tests.helpers.sumdbserver import build_sumdbserver


@pytest.fixture(scope="session")
def sumdbserver_bin(tmp_path_factory):
    """The compiled tests/helpers/sumdbserver (a golang.org/x/mod/sumdb server), built offline."""
    return build_sumdbserver(tmp_path_factory.mktemp("sumdbserver"))
