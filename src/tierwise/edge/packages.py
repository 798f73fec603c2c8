"""Signed packages on a gateway: the `PackageOps` the deployer uses, built on `tierwise.package`.

Verification, the atomic swap and the last-known-good are `tierwise.package.install`'s (one
implementation, shared with `tierwise verify` and the registry); this module only unpacks
the downloaded archive safely, loads a package with the package runtime and probes it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tierwise.edge.router import Floats2D, LocalModel
from tierwise.errors import TierwiseError, UsageError, VerificationError
from tierwise.package.archive import unpack_archive
from tierwise.spec.tiers import EscalationRule

if TYPE_CHECKING:
    from tierwise.package.manifest import DriftReference, Manifest, VariantEntry
    from tierwise.package.runtime import PackageModel

MAX_UNPACKED_BYTES = 2 * 1024**3
PROBE_ROWS = 4


class ProbeFailedError(TierwiseError):
    """A package loaded but does not answer sanely (shape, NaN, confidence out of [0, 1])."""


class SignedPackages:
    """Packages signed by one of `trusted_keys`, installed one directory per package name."""

    def __init__(self, trusted_keys: tuple[Path, ...]) -> None:
        from tierwise.package.keys import load_trusted_keys

        self.trusted = load_trusted_keys(trusted_keys)

    def unpack(self, archive: bytes, into: Path) -> Path:
        """Extract a tar.gz with tarfile's `data` filter (no links out, no devices, no `..`)."""
        shutil.rmtree(into, ignore_errors=True)
        into.mkdir(parents=True)
        return unpack_archive(archive, into, MAX_UNPACKED_BYTES)

    def install(self, path: Path, install_dir: Path) -> int:
        from tierwise.package.install import install_package

        return install_package(path, install_dir, self.trusted).version

    def rollback(self, install_dir: Path) -> Path | None:
        from tierwise.package.install import current_package, rollback

        try:
            rollback(install_dir)
        except UsageError:  # nothing to go back to
            return None
        return current_package(install_dir)

    def current(self, install_dir: Path) -> Path | None:
        from tierwise.package.install import current_package

        return current_package(install_dir)

    def previous_version(self, install_dir: Path) -> int | None:
        from tierwise.package.install import previous_package
        from tierwise.package.manifest import read_manifest

        previous = previous_package(install_dir)
        return None if previous is None else read_manifest(previous).version

    def check_variant(self, path: Path, variant: str | None) -> None:
        """Refuse, before installing, a package without the variant the deployment names (its
        manifest is verified by `install` right after, and again by `load`)."""
        from tierwise.package.manifest import read_manifest

        if variant is None:
            return
        try:
            manifest = read_manifest(path)
        except (OSError, ValueError):
            return  # not a package at all: `install` refuses it, saying why
        _variant_of(manifest, variant)

    def load(self, path: Path, variant: str | None = None) -> LocalModel:
        """Verify the installed copy again (cheap: one signature, one hash per file) and load
        `variant` (default: its smallest) — what runs is what was verified, even after a
        restart. A variant the package lacks is refused like a tampered package."""
        from tierwise.package.runtime import load_variant
        from tierwise.package.verify import verify_package

        manifest = verify_package(path, self.trusted)
        entry = _variant_of(manifest, variant)
        return PackageAnswerer(load_variant(path, manifest, entry.name))

    def probe(self, model: LocalModel) -> None:
        """Answer a few rows of zeros: one finite output row each, confidences in [0, 1]."""
        width = model.input_width
        outputs, confidence = model.predict(np.zeros((PROBE_ROWS, width), dtype=np.float32))
        outputs = np.asarray(outputs)
        confidence = np.asarray(confidence)
        if outputs.shape[0] != PROBE_ROWS or confidence.shape != (PROBE_ROWS,):
            raise ProbeFailedError(
                f"health probe: {PROBE_ROWS} rows in, outputs {outputs.shape} and confidence "
                f"{confidence.shape} out"
            )
        if not (np.all(np.isfinite(outputs)) and np.all((confidence >= 0) & (confidence <= 1))):
            raise ProbeFailedError("health probe: outputs not finite or confidence outside [0, 1]")


def _variant_of(manifest: Manifest, variant: str | None) -> VariantEntry:
    try:
        return manifest.variant(variant)
    except KeyError as exc:
        raise VerificationError(f"v{manifest.version}: {exc.args[0]}") from None


class PackageAnswerer:
    """A loaded package as the router sees it: outputs (class probabilities) and confidence."""

    def __init__(self, model: PackageModel) -> None:
        self.model = model
        # Load every escalation rule now, so a broken rule file refuses the package at
        # install (with the last-known-good kept), not the first hard request after it.
        cascade = model.manifest.cascade
        for rule in cascade.rules.get(model.variant.name, {}) if cascade is not None else ():
            model.escalation_rule(rule)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> int:
        return self.model.version

    @property
    def variant(self) -> str:
        return self.model.variant.name

    @property
    def input_width(self) -> int:
        return self.model.manifest.input.features

    @property
    def drift_reference(self) -> DriftReference | None:
        return self.model.manifest.drift

    @property
    def row_independent(self) -> bool:
        # Dynamic INT8 quantization scales activations by the whole input tensor: a row's
        # outputs would shift with the rows that share its call.
        return self.model.variant.quantization != "dynamic"

    def predict(
        self, inputs: Floats2D, rule: EscalationRule = EscalationRule.MAX_PROBABILITY
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        rows = np.atleast_2d(np.asarray(inputs, dtype=np.float32))
        probabilities = self.model.predict(rows).probabilities  # float32, as ONNX rules take it
        score = self.model.escalation_rule(rule.value).score(probabilities, rows)
        return probabilities.astype(np.float64), score
