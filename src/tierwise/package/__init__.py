"""Edge packages: a trained model compressed, measured, calibrated for cascades, and signed.

Edge side (onnxruntime, numpy, cryptography, pydantic only): `manifest`, `keys`, `signing`,
`verify`, `install`, `runtime`, `measure`, `calibrate`. Build side (imports scikit-learn,
skl2onnx, onnx or torch lazily): `export`, `quantize`, `reference`, `evaldata`, `build`.

Importing this package pulls in only the edge side's verification API, never onnxruntime.
"""

from tierwise.package.install import current_package, install_package, installed_version, rollback
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
