"""Every error tierwise raises on purpose, and the exit code the CLI gives it.

The tree::

    TierwiseError                 exit 4  something failed while running
    ├── SpecError                 exit 2  the spec (YAML) is wrong; says file:line field
    ├── UsageError                exit 2  a command-line argument is wrong
    ├── InfeasibleError           exit 4  no placement meets every hard constraint; says which
    ├── VerificationError         exit 3  a package or token was refused; says why
    ├── MissingDependencyError    exit 4  an optional extra is not installed; says what to install
    └── LinkError                 exit 4  the other side could not be reached (transport failure)

A transport failure (`LinkError`) is kept apart from the other side saying no
(`VerificationError`): one is retried, the other never is.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_RUNTIME = 4


class TierwiseError(Exception):
    """Root of every error tierwise raises on purpose."""

    exit_code: int = EXIT_RUNTIME


class SpecError(TierwiseError):
    """The spec is malformed: one message per problem, each naming file, line and field."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class UsageError(TierwiseError):
    """A command-line argument is wrong."""

    exit_code = EXIT_BAD_INPUT


class InfeasibleError(TierwiseError):
    """No assignment satisfies every hard constraint."""

    exit_code = EXIT_RUNTIME


class VerificationError(TierwiseError):
    """A signature, hash, version or token check refused something."""

    exit_code = EXIT_REFUSED


class MissingDependencyError(TierwiseError):
    """An optional dependency is needed; the message carries the pip command."""

    exit_code = EXIT_RUNTIME

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the '{extra}' extra: pip install 'tierwise[{extra}]'")


class LinkError(TierwiseError):
    """The other side could not be reached or timed out."""

    exit_code = EXIT_RUNTIME
