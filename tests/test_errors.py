"""Every exception class in tierwise is a TierwiseError, drawn in errors.py's tree as it is.

The tree in `tierwise.errors`' docstring is what a newcomer reads; these tests keep it the
truth: every class in it, under its real parent, with its real exit code and HTTP status,
and no exception class anywhere in `src/tierwise` left out of it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from dataclasses import dataclass, field

import pytest

import tierwise
from tierwise import errors
from tierwise.errors import RequestRefusedError, TierwiseError


@dataclass
class Drawn:
    """One class as errors.py draws it."""

    name: str
    parent: str | None
    exit_code: int
    http: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)  # the `+ X` standard exceptions


def drawn_tree() -> dict[str, Drawn]:
    """The classes of the tree in errors.py's docstring, read by its header's columns."""
    doc = errors.__doc__ or ""
    lines = doc[doc.index("::") + 2 :].strip("\n").split("\n\n")[0].splitlines()
    header, rows = lines[0], lines[1:]
    exit_at, http_at, what_at = (header.index(word) for word in ("exit", "HTTP", "what"))
    tree: dict[str, Drawn] = {}
    parents: list[tuple[int, str]] = []  # (depth, name) from the root to the last class
    last: Drawn | None = None
    for row in rows:
        name_field = row[:exit_at]
        exit_text, http_text = row[exit_at:http_at].strip(), row[http_at:what_at].strip()
        name = name_field.lstrip(" │├└─")
        if name.startswith("+ ") and last is not None:
            last.also.append(name[2:].strip())
            continue
        if not name.strip():  # a continuation line: maybe one more status
            if http_text and last is not None:
                last.http.append(http_text)
            continue
        depth = len(name_field) - len(name)
        while parents and parents[-1][0] >= depth:
            parents.pop()
        name = name.strip()
        last = Drawn(name, parents[-1][1] if parents else None, int(exit_text))
        last.http.extend([http_text] if http_text else [])
        tree[name] = last
        parents.append((depth, name))
    return tree


@functools.cache  # it imports every module (Flower, torch, FastAPI...): once, and only when asked
def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of src/tierwise, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(tierwise.__path__, "tierwise."):
        # scripts, run rather than imported: the CLI, and Alembic's migration entry point
        if info.name.endswith("__main__") or info.name == "tierwise.cloud.migrations.env":
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                if issubclass(value, BaseException):
                    assert value.__name__ not in found, f"two classes named {value.__name__}"
                    found[value.__name__] = value
                else:
                    assert not re.search("Error|Exception", value.__name__), (
                        f"{module.__name__}.{value.__name__} is named like an exception but is not"
                    )
    return found


TREE = drawn_tree()


def drawn_under(ancestor: str) -> list[str]:
    """The classes the tree draws below `ancestor`, at any depth."""
    below = [name for name, drawn in TREE.items() if drawn.parent == ancestor]
    return sorted(below + [name for child in below for name in drawn_under(child)])


def test_every_exception_class_is_a_tierwise_error() -> None:
    found = exception_classes()
    outside = sorted(n for n, cls in found.items() if not issubclass(cls, TierwiseError))
    assert outside == []


def test_the_tree_draws_every_class_and_only_those() -> None:
    assert sorted(TREE) == sorted(exception_classes())


@pytest.mark.parametrize("name", sorted(TREE))
def test_each_class_sits_under_its_drawn_parent_with_its_drawn_exit_code(name: str) -> None:
    cls, drawn = exception_classes()[name], TREE[name]
    assert issubclass(cls, TierwiseError)
    ours = [base for base in cls.__bases__ if issubclass(base, TierwiseError)]
    others = [base.__name__ for base in cls.__bases__ if not issubclass(base, TierwiseError)]
    if drawn.parent is None:
        assert cls is TierwiseError
    else:
        assert [base.__name__ for base in ours] == [drawn.parent]
        assert others == drawn.also
    assert isinstance(cls.exit_code, int)
    assert cls.exit_code == drawn.exit_code


@pytest.mark.parametrize("name", ["RequestRefusedError", *drawn_under("RequestRefusedError")])
def test_each_refusal_draws_the_http_status_it_is_answered_with(name: str) -> None:
    cls = exception_classes()[name]
    assert issubclass(cls, RequestRefusedError)
    assert str(cls.status) in TREE[name].http


def test_the_tree_is_read_as_drawn() -> None:
    """The reader itself, on a few rows: nesting, `+ X`, continued statuses."""
    assert TREE["NoAnswerError"].parent == "UnavailableError"
    assert TREE["HttpError"].also == ["OSError"]
    assert TREE["BadEncodingError"].http == ["400", "413", "415"]
    assert TREE["RoundFailedError"].parent == "TierwiseError"
