"""Every error tierwise raises on purpose: the CLI's exit code for it, a service's HTTP status.

The tree. A class defined in another module names it; `+ X` marks a standard exception the
class also derives from, for the callers that catch that one. HTTP is the status a service
answers the error with, or for the edge link's errors the cloud's answer they stand for::

    class                          exit HTTP  what went wrong
    TierwiseError                  4          something failed while running
    ├── SpecError                  2          the spec (YAML) is wrong; says file:line field
    ├── UsageError                 2          a command-line argument is wrong
    │   └── UnsupportedModelError  2          federate/from_sklearn.py: a model that does not
    │                                         fold into the federated MLP; says which part
    ├── InfeasibleError            4          no placement meets every hard constraint
    ├── VerificationError          3          a package or token was refused; says why
    │   └── CloudAuthError         3    401   edge/link.py: the cloud refused this site's token,
    │                                   403   or its right to the resource
    ├── MissingDependencyError     4          an optional extra is missing; says what to install
    ├── BrokerUnavailableError     4          up/broker.py: Mosquitto is not installed here;
    │                                         says how to install it or name a broker
    ├── LinkError                  4          the other side could not be reached (transport)
    │   └── HttpError              4          up/http_client.py: a simulated device's connection
    │       + OSError                         broke, or the answer was not HTTP
    ├── CloudRefusedError          3    4xx   edge/link.py: the cloud said no (any other 4xx)
    ├── RequestRefusedError        3    400   this service refuses a request; says why
    │   ├── NotFoundError          3    404   what the request names does not exist
    │   ├── ConflictError          3    409   it clashes with the current state
    │   ├── UnprocessableError     3    422   well-formed but unusable
    │   ├── BadEncodingError       3    400   cloud/decompress.py: a body that is not gzip,
    │   │                               413   inflates past the limit, or comes in an
    │   │                               415   encoding the cloud does not take
    │   ├── BodyTooLargeError      3    413   cloud/limits.py: a body over the size limit
    │   │   + HTTPException                   (starlette's: FastAPI lets it out of body reading)
    │   └── UnavailableError       4    503   cannot answer now: the edge agent is draining
    │       └── NoAnswerError      4    503   edge/router.py: neither the cloud nor a local
    │                                         model could answer
    ├── FieldSampleError           4          field_file.py: a field sample file that
    │                                         cannot be read as one; says file and field
    ├── ProbeFailedError           4          edge/packages.py: a package loads but answers
    │                                         wrong (shape, NaN, confidence outside [0, 1])
    ├── RetrainingFailedError      4          learn/federated.py: a federated retraining ended
    │                                         without a model; says why and where its logs are
    └── RoundFailedError           4          federate/rounds.py: federated training stopped on
                                              purpose (fail closed); says which round and why

A transport failure (`LinkError`: worth retrying) is kept apart from the other side saying
no (`VerificationError`, `CloudRefusedError`, `RequestRefusedError`: retrying will not help).
A service answers a `RequestRefusedError` with its status and `{"detail": message}`
(`tierwise.http_refusals`), so the code that raises it needs no web framework.
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


class RequestRefusedError(TierwiseError):
    """A request this service understood and refuses; `status` is the HTTP code it answers.

    Raised by the services' own logic (the cloud's registry and rollouts, the edge agent) so
    that it needs no web framework; each app answers it as `{"detail": detail}` with `status`
    (`tierwise.http_refusals`).
    """

    exit_code = EXIT_REFUSED
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(RequestRefusedError):
    """What the request names (a package, a rollout, a feature) does not exist here."""

    status = 404


class ConflictError(RequestRefusedError):
    """The request clashes with the current state (a version not newer, a rollout running)."""

    status = 409


class UnprocessableError(RequestRefusedError):
    """Well-formed, but unusable: inputs that do not fit, a package that fails verification."""

    status = 422


class UnavailableError(RequestRefusedError):
    """The service cannot answer now (an edge agent draining, nothing to answer with)."""

    exit_code = EXIT_RUNTIME
    status = 503
