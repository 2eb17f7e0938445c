"""Shared fixtures: a running emulator on a free loopback port."""

from __future__ import annotations

import pytest
from support import API_KEY, plain_studio

from skylab_watch.emulator import Emulator


@pytest.fixture
def emulator():
    """A running emulator with fast processing, on a free loopback port."""
    with Emulator(api_key=API_KEY, processing_seconds=0.3) as emu:
        yield emu


@pytest.fixture
def plain_emulator():
    """A running emulator whose account already has a plain profile named `plain`."""
    with plain_studio() as emu:
        yield emu
