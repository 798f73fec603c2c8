"""Edge packages: a trained model compressed, measured, calibrated for cascades, and signed.

Edge side (onnxruntime, numpy, cryptography, pydantic only): `manifest`, `keys`, `signing`,
`verify`, `install`, `runtime`, `measure`, `calibrate`. Build side (imports scikit-learn,
skl2onnx, onnx or torch lazily): `export`, `quantize`, `reference`, `evaldata`, `build`.

The names below load on first use, so `tierwise --help` (which imports `commands`) does not
pay for cryptography or onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names

if TYPE_CHECKING:
    from tierwise.package.install import (
        current_package,
        install_package,
        installed_version,
        rollback,
    )
    from tierwise.package.keys import (
        key_id,
        load_private_key,
        load_public_key,
        load_trusted_keys,
        write_keypair,
    )
    from tierwise.package.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest, read_manifest
    from tierwise.package.verify import verify_package

__all__ = [
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "Manifest",
    "current_package",
    "install_package",
    "installed_version",
    "key_id",
    "load_private_key",
    "load_public_key",
    "load_trusted_keys",
    "read_manifest",
    "rollback",
    "verify_package",
    "write_keypair",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "MANIFEST_NAME": "manifest",
        "SIGNATURE_NAME": "manifest",
        "Manifest": "manifest",
        "read_manifest": "manifest",
        "current_package": "install",
        "install_package": "install",
        "installed_version": "install",
        "rollback": "install",
        "key_id": "keys",
        "load_private_key": "keys",
        "load_public_key": "keys",
        "load_trusted_keys": "keys",
        "write_keypair": "keys",
        "verify_package": "verify",
    },
)
