"""The agent's listening socket: every server stack answers its devices with Nagle off."""

from __future__ import annotations

import pytest
from tests.nagle import accepted_nodelay

from tierwise.edge.serve import bind, installed_server_stacks


@pytest.mark.parametrize("stack", installed_server_stacks())
def test_every_stack_answers_on_a_socket_with_nagle_off(stack: str) -> None:
    # Plain asyncio leaves Nagle on when the listener's proto is 0: each answer then waited
    # ~40 ms for the device's delayed ACK (benchmarks/edge_overhead.py shows it per stack).
    assert accepted_nodelay(bind("127.0.0.1", 0), stack) != 0
