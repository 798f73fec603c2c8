"""Path parameters shared by the routers, with the same name rules as `tierwise.wire.Name`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

SitePath = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)]
FeaturePath = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)]
PackagePath = Annotated[str, Path(min_length=1, max_length=128, pattern=NAME_PATTERN)]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
RolloutIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
