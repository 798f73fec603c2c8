"""The operator's client of the cloud API: packages, assignments, rollouts, site telemetry.

`tierwise up` deploys through it and `tierwise federate --cloud` publishes through it, both
with the operator (admin) token. It needs httpx, `tierwise.wire` and the package archive
only, so importing it loads neither FastAPI nor SQLAlchemy. (An edge agent speaks to the
cloud with its site token through `tierwise.edge.link` instead.)

Failures, as `tierwise.errors` draws them: the cloud could not be reached, timed out or could
not serve now (5xx, 429) → `LinkError`; the cloud answered no (any other 4xx: the token, the
package's signature or version, a body it refuses) → `VerificationError`, which retrying will
not fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, RootModel, ValidationError

from tierwise.errors import LinkError, VerificationError
from tierwise.package.archive import pack_archive
from tierwise.wire import (
    ARCHIVE_MEDIA_TYPE,
    MAX_TELEMETRY_BATCH,
    CloudModelAssignment,
    FeatureAssignment,
    PackageInfo,
    Rollout,
    RolloutRequest,
    TelemetryEvent,
    TelemetryPage,
    refusal_detail,
)

DEFAULT_TIMEOUT_S = 60.0  # a package upload is tens of MB, verified before the cloud answers

M = TypeVar("M", bound=BaseModel)


class Rollouts(RootModel[list[Rollout]]):
    """The cloud's list of rollouts (`GET /v1/rollouts`)."""


@dataclass(frozen=True)
class CloudAdmin:
    """The cloud API at `url` as the operator uses it, with the admin `token`."""

    url: str
    token: str
    timeout_s: float = DEFAULT_TIMEOUT_S

    def upload_package(self, package_dir: Path) -> PackageInfo:
        """POST the package as tar.gz; the registry verifies it before registering it.

        Uploading the very same package again is answered as a harmless retry.
        """
        response = self._send(
            "POST",
            "/v1/packages",
            f"package {package_dir.name}",
            content=pack_archive(package_dir),
            headers={"Content-Type": ARCHIVE_MEDIA_TYPE},
        )
        return _parse(PackageInfo, response)

    def newest_version(self, name: str) -> int:
        """The highest registered version of package `name` (0 when none is)."""
        found = self._send("GET", "/v1/packages", "the list of packages").json()
        return max((int(p["version"]) for p in found if p.get("name") == name), default=0)

    def assign(self, site: str, feature: str, assignment: FeatureAssignment) -> None:
        """Run `feature` at `site` with this package version and routing."""
        self._send(
            "PUT",
            f"/v1/sites/{site}/features/{feature}",
            f"the assignment of {feature} at {site}",
            json=assignment.model_dump(mode="json", exclude_none=True),
        )

    def set_cloud_model(self, feature: str, model: CloudModelAssignment) -> None:
        """Answer `feature`'s cloud inference with this package version."""
        self._send(
            "PUT",
            f"/v1/cloud-models/{feature}",
            f"the cloud model of {feature}",
            json=model.model_dump(mode="json", exclude_none=True),
        )

    def start_rollout(self, request: RolloutRequest) -> Rollout:
        """Start a staged rollout: the canary sites first, the rest once the canaries bake."""
        response = self._send(
            "POST",
            "/v1/rollouts",
            f"the rollout of {request.package} v{request.version}",
            json=request.model_dump(mode="json", exclude_none=True),
        )
        return _parse(Rollout, response)

    def rollout(self, rollout_id: int) -> Rollout:
        """A rollout as it stands now; reading it also lets the cloud move it on."""
        response = self._send("GET", f"/v1/rollouts/{rollout_id}", f"rollout {rollout_id}")
        return _parse(Rollout, response)

    def rollouts(self) -> list[Rollout]:
        """Every rollout the cloud holds, oldest first."""
        return _parse(Rollouts, self._send("GET", "/v1/rollouts", "the list of rollouts")).root

    def roll_back(self, rollout_id: int) -> Rollout:
        """Stop a running rollout: every site gets back the version it ran before."""
        path = f"/v1/rollouts/{rollout_id}/rollback"
        return _parse(Rollout, self._send("POST", path, f"the rollback of rollout {rollout_id}"))

    def streams(self, site: str) -> dict[str, dict[str, int]]:
        """Per telemetry stream of a site: the events the cloud holds and the highest seq."""
        found: dict[str, dict[str, int]] = self._send(
            "GET", f"/v1/sites/{site}/streams", f"the streams of {site}"
        ).json()
        return found

    def put_plan(self, plan: dict[str, Any]) -> None:
        """The plan the fleet runs (`PlanResult.to_dict()`), for the dashboard's cost view."""
        self._send("PUT", "/v1/plan", "the plan", json=plan)

    def drift(self) -> list[dict[str, Any]]:
        """The newest drift verdict of every site and feature (cloud/drift.py's DriftView)."""
        found: list[dict[str, Any]] = self._send("GET", "/v1/drift", "the drift verdicts").json()
        return found

    def field_feedback(self, site: str, feature: str, since: float) -> dict[str, Any]:
        """A site's feedback summaries of `feature` since `since` (edge wall clock), summed:
        cloud/field_feedback.py's FieldFeedback."""
        found: dict[str, Any] = self._send(
            "GET",
            f"/v1/sites/{site}/feedback/{feature}",
            f"the feedback of {feature} at {site}",
            params={"since": since},
        ).json()
        return found

    def events(self, site: str, stream: str) -> list[TelemetryEvent]:
        """Every event of one of a site's streams the cloud holds, in seq order."""
        found: list[TelemetryEvent] = []
        after = -1
        while True:  # a page holds at most a batch's worth; next_after says where to go on
            response = self._send(
                "GET",
                f"/v1/sites/{site}/telemetry",
                f"stream {stream} of {site}",
                params={"stream": stream, "after": after, "limit": MAX_TELEMETRY_BATCH},
            )
            page = _parse(TelemetryPage, response)
            found += page.events
            if page.next_after is None:
                return found
            after = page.next_after

    def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        try:
            with httpx.Client(base_url=self.url, timeout=self.timeout_s) as client:
                response = client.request(method, path, headers=headers, **kwargs)
        except httpx.RequestError as exc:
            raise LinkError(
                f"cannot reach the cloud at {self.url} ({method} {path}): {exc!r}"
            ) from exc
        code = response.status_code
        if code >= 500 or code == 429:
            raise LinkError(
                f"the cloud could not serve {what} ({code}): {refusal_detail(response.text)}"
            )
        if code >= 400:
            raise VerificationError(
                f"the cloud refused {what} ({code}): {refusal_detail(response.text)}"
            )
        return response


def _parse(model: type[M], response: httpx.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise LinkError(f"the cloud answered a malformed {model.__name__}: {exc}") from exc
