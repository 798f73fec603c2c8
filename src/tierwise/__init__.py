"""tierwise: decide where each piece of your AI should live — device, edge or cloud — and run it.

The public surface: load a spec, plan it, read the result. Heavier parts (the planner's
solver, packaging, the services) load on first use, so `import tierwise` stays cheap on a
gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tierwise.errors import (
    InfeasibleError,
    LinkError,
    MissingDependencyError,
    SpecError,
    TierwiseError,
    UsageError,
    VerificationError,
)
from tierwise.spec import Spec, load_spec, parse_spec

if TYPE_CHECKING:
    from tierwise.plan.planner import PlanResult
    from tierwise.plan.planner import plan as make_plan

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

# name -> (module, attribute); `tierwise.plan` is the subpackage, so the function is make_plan
_LAZY = {
    "make_plan": ("tierwise.plan.planner", "plan"),
    "PlanResult": ("tierwise.plan.planner", "PlanResult"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tierwise' has no attribute {name!r}")
