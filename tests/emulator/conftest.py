"""Fixtures for the emulator tests: a running emulator and a raw API wrapper."""

from __future__ import annotations

import pytest
from emulator_helpers import KEY, Api

from skylab_watch.emulator import Emulator


@pytest.fixture
def emu():
    """A running emulator with fast processing."""
    with Emulator(api_key=KEY, processing_seconds=0.3) as emulator:
        yield emulator


@pytest.fixture
def api(emu: Emulator) -> Api:
    return Api(emu.url)
