"""Package names that load on first use, so importing a package stays cheap (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_names(
    package: str, module_of: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's `__getattr__` and `__dir__`: each name imported from `package.<module_of[name]>`
    when first asked for, and listed by `dir()` before that.

    `module_of[name]` is the submodule that defines the name, or `"module:attribute"` when the
    package offers it under another name. The package lists the same names under
    `if TYPE_CHECKING:` for type checkers and editors.
    """
    bound = vars(sys.modules[package])  # what the package's __init__ binds itself

    def __getattr__(name: str) -> Any:  # noqa: N807  (the name PEP 562 looks for)
        if name in module_of:
            module, _, attribute = module_of[name].partition(":")
            value = getattr(importlib.import_module(f"{package}.{module}"), attribute or name)
            bound[name] = value  # later lookups find it in the module, without this hook
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:  # noqa: N807
        return sorted({*bound, *module_of})

    return __getattr__, __dir__
