"""Run a package variant: load it into an ONNX Runtime session and predict on numpy batches.

The model file is read once, its sha256 checked against the manifest, and the session built
from those very bytes — so what runs is what was verified, even if the file changes on disk
afterwards. Use `load_verified` unless the package was verified a moment ago by the caller
(`install_package` does that for installs).

Edge side: needs only onnxruntime, numpy and the modules above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from numpy.typing import NDArray

from tierwise.errors import UsageError, VerificationError
from tierwise.package.manifest import Manifest, VariantEntry, read_manifest, sha256_bytes
from tierwise.package.verify import verify_package
from tierwise.rules.routers import (
    DEFAULT_RULE,
    EscalationRule,
    Learned,
    Prototypes,
    make_rule,
)


@dataclass(frozen=True)
class Prediction:
    """Per input row: class probabilities, the top probability (confidence) and the label."""

    probabilities: NDArray[np.float32]  # [N, classes]
    confidence: NDArray[np.float32]  # [N], max probability
    labels: NDArray[Any]  # [N], from the manifest's classes

    def escalate(self, threshold: float) -> NDArray[np.bool_]:
        """Rows a cascade sends to the cloud: confidence below the threshold."""
        return self.confidence < threshold

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        """`np.asarray(prediction)` is its probabilities: what a caller wanting outputs means."""
        return np.asarray(self.probabilities, dtype=dtype)


class PackageModel:
    """One variant of a package, ready to answer."""

    def __init__(
        self,
        manifest: Manifest,
        variant: VariantEntry,
        session: ort.InferenceSession,
        package_dir: Path | None = None,
    ):
        self.manifest = manifest
        self.variant = variant
        self.session = session
        self.package_dir = package_dir
        self._rules: dict[str, EscalationRule] = {}
        self._classes = np.asarray(manifest.output.classes)
        self._input = manifest.input.name
        self._output = manifest.output.probabilities

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def input_width(self) -> int:
        """Values per input row."""
        return self.manifest.input.features

    def predict(self, inputs: Any) -> Prediction:
        """Predict on one vector [features] or a batch [N, features] (anything numpy accepts)."""
        x = self._batch(inputs)
        if len(x) == 0:  # some exported graphs (skl2onnx's label branch) fail on empty batches
            empty = np.zeros((0, len(self._classes)), dtype=np.float32)
            return Prediction(empty, np.zeros(0, dtype=np.float32), self._classes[:0])
        (probs,) = self.session.run([self._output], {self._input: x})
        probs = np.asarray(probs, dtype=np.float32)
        return Prediction(probs, probs.max(axis=1), self._classes[probs.argmax(axis=1)])

    def escalation_rule(self, name: str | None = None) -> EscalationRule:
        """The cascade's escalation rule `name` for this variant (default: the package's best),
        with its fitted temperature or its model file (learned router, prototypes;
        hash-checked, then loaded)."""
        if name in self._rules:  # the agent asks on every request: no manifest lookups
            return self._rules[name]
        cascade = self.manifest.cascade
        if cascade is None or self.variant.name not in cascade.rules:
            if name in (None, DEFAULT_RULE):
                self._rules[DEFAULT_RULE] = make_rule(DEFAULT_RULE)
                return self._rules[DEFAULT_RULE]
            raise UsageError(f"{self.name}: no cascade calibration, so no {name} rule")
        try:
            entry = cascade.rule(self.variant.name, name)
        except KeyError as exc:
            raise UsageError(f"{self.name} {self.variant.name}: {exc.args[0]}") from None
        key = name or cascade.best_rule[self.variant.name]
        if key not in self._rules:
            if entry.file is not None:
                self._rules[key] = onnx_rule(self._read_checked(entry.file), key)
            else:
                self._rules[key] = make_rule(key, temperature=entry.temperature)
        return self._rules[key]

    def _read_checked(self, file: str) -> bytes:
        if self.package_dir is None:
            raise UsageError(f"{self.name}: loaded without its directory; cannot read {file}")
        return read_checked(self.package_dir, self.manifest, file)

    def _batch(self, inputs: Any) -> NDArray[np.float32]:
        try:
            x = np.asarray(inputs, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{self.name}: inputs are not numeric: {exc}") from None
        if x.ndim == 1:
            x = x[None, :]
        features = self.manifest.input.features
        if x.ndim != 2 or x.shape[1] != features:
            raise UsageError(
                f"{self.name}: expected inputs of shape [N, {features}], got {list(x.shape)}"
            )
        if not np.isfinite(x).all():
            raise UsageError(f"{self.name}: inputs contain NaN or infinity")
        return np.ascontiguousarray(x)


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One intra-op thread by default: a gateway worker runs one inference at a time."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings are for model authors
    return options


def load_variant(
    package_dir: str | Path, manifest: Manifest, variant: str | None = None, threads: int = 1
) -> PackageModel:
    """Load a variant of an already-verified package (its file's hash is checked again)."""
    entry = _variant(manifest, variant)
    blob = read_checked(package_dir, manifest, entry.file)
    session = ort.InferenceSession(
        blob, sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
    return PackageModel(manifest, entry, session, Path(package_dir))


def read_checked(package_dir: str | Path, manifest: Manifest, file: str) -> bytes:
    """A payload file's bytes, refused unless they still hash to what the manifest says."""
    try:
        blob = (Path(package_dir) / file).read_bytes()
    except OSError as exc:
        raise VerificationError(f"{file}: cannot read: {exc.strerror or exc}") from None
    if sha256_bytes(blob) != manifest.files[file]:
        raise VerificationError(f"{file} changed since the package was verified")
    return blob


def onnx_rule(onnx_bytes: bytes, rule: str = "learned") -> EscalationRule:
    """The rule `rule` running its exported graph (what the edge runs, byte for byte).

    The learned router's graph takes the edge model's class probabilities [N, classes] and
    computes its features itself (package/routers.py); the prototypes graph takes them and
    the input rows [N, features] and returns the score (package/prototypes.py). Either way
    one ONNX Runtime call scores a request.
    """
    session = ort.InferenceSession(
        onnx_bytes, sess_options=session_options(1), providers=["CPUExecutionProvider"]
    )
    if rule == "prototypes":
        probabilities_name, inputs_name = (i.name for i in session.get_inputs())
        score_name = session.get_outputs()[0].name

        def score(probabilities: NDArray[np.float32], inputs: NDArray[np.float32]) -> Any:
            feed = {probabilities_name: probabilities, inputs_name: inputs}
            return session.run([score_name], feed)[0]

        return Prototypes(score)
    if rule != "learned":
        raise UsageError(f'the {rule} rule has no model file; only "learned" and "prototypes"')
    name = session.get_inputs()[0].name
    output = "probabilities"  # the regression's, without zipmap: [N, 2] for False, True

    def right(probabilities: NDArray[np.float32]) -> NDArray[np.float64]:
        (probs,) = session.run([output], {name: probabilities})
        column: NDArray[np.float64] = probs[:, 1].astype(np.float64)  # cast one column, not two
        return column

    return Learned(right)


def load_model(
    package_dir: str | Path, variant: str | None = None, threads: int = 1
) -> PackageModel:
    """Load a package whose signature was checked earlier (e.g. by a registry on upload).

    The manifest is read without its signature; the variant's file is still hashed against it.
    """
    try:
        manifest = read_manifest(package_dir)
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{package_dir}: no readable manifest: {exc}") from None
    return load_variant(package_dir, manifest, variant, threads=threads)


def load_verified(
    package_dir: str | Path,
    trusted_keys: dict[str, Ed25519PublicKey] | Iterable[str | Path] | str | Path,
    variant: str | None = None,
    installed_version: int | None = None,
    threads: int = 1,
) -> PackageModel:
    """Verify a package, then load one of its variants (default: the smallest)."""
    manifest = verify_package(package_dir, trusted_keys, installed_version=installed_version)
    return load_variant(package_dir, manifest, variant, threads=threads)


def _variant(manifest: Manifest, name: str | None) -> VariantEntry:
    try:
        return manifest.variant(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
