"""Package names that load on first use, so importing a package stays cheap (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_names(package: str, module_of: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` importing each name from `package.<module_of[name]>` when asked.

    The package lists the same names under `if TYPE_CHECKING:` for type checkers and editors.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807  (the name PEP 562 looks for)
        if name in module_of:
            return getattr(importlib.import_module(f"{package}.{module_of[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
