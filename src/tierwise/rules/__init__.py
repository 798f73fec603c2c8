"""Decision rules shared by the simulator and the edge agent: one implementation, two clocks.

Everything here works on plain floats and on numpy arrays alike (the simulator decides for
millions of requests at once, the agent for one), and imports nothing heavier than numpy, so
`tierwise[edge]` can use it on a gateway.

- `clock`: `Clock`, with `RealClock` (the agent's deadlines), `WallClock` (instants that are stored:
  the cloud's timestamps, the agent's event times) and `VirtualClock` (tests, simulation).
- `escalation`: when a cascade sends a request to the cloud, and which answer it returns.
- `outbox`: the bounded store-and-forward queue: byte cap, drop policy, counted drops.
- `cost`: what cloud calls, instance time and bytes over a link cost.
"""

from tierwise.rules.clock import Clock, RealClock, VirtualClock, WallClock
from tierwise.rules.cost import CloudPricing, egress_cost, prorated
from tierwise.rules.escalation import (
    RoundTripTracker,
    cascade_answer,
    escalate,
    is_hard,
    tie_draws,
)
from tierwise.rules.outbox import DropPolicy, OutboxStep, admit, outbox_step

__all__ = [
    "Clock",
    "CloudPricing",
    "DropPolicy",
    "OutboxStep",
    "RealClock",
    "RoundTripTracker",
    "VirtualClock",
    "WallClock",
    "admit",
    "cascade_answer",
    "egress_cost",
    "escalate",
    "is_hard",
    "outbox_step",
    "prorated",
    "tie_draws",
]
