"""tierwise: decide where each piece of your AI should live — device, edge or cloud — and run it.

The public surface: load a spec, plan it, read the result. Heavier parts (the planner's
solver, packaging, the services) load on first use, so `import tierwise` stays cheap on a
gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.errors import (
    InfeasibleError,
    LinkError,
    MissingDependencyError,
    SpecError,
    TierwiseError,
    UsageError,
    VerificationError,
)
from tierwise.lazy import lazy_names
from tierwise.spec import Spec, load_spec, parse_spec

if TYPE_CHECKING:
    from tierwise.plan import PlanResult
    from tierwise.plan import plan as make_plan

__version__ = "0.1.0"

__all__ = [
    "InfeasibleError",
    "LinkError",
    "MissingDependencyError",
    "PlanResult",
    "Spec",
    "SpecError",
    "TierwiseError",
    "UsageError",
    "VerificationError",
    "__version__",
    "load_spec",
    "make_plan",
    "parse_spec",
]

# `tierwise.plan` is the subpackage, so its `plan` function is `make_plan` here
__getattr__, __dir__ = lazy_names(__name__, {"PlanResult": "plan", "make_plan": "plan:plan"})
