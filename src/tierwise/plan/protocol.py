"""What a device protocol adds to every request that crosses the WAN: MQTT's framing bytes.

A feature's `payload` and `result` are what a request carries and its answer returns. When
the feature runs in the cloud, its devices send both across the WAN; with `protocol: mqtt`
they publish to a broker in the cloud, and each request/answer exchange also carries MQTT v5
framing, at the QoS levels the tierwise responder uses (edge/mqtt.py, docs/edge.md
"Delivery semantics"; the topics of edge/mqtt_wire.py):

- the request PUBLISH at QoS 1: fixed header, topic `tierwise/{site}/{feature}/request`,
  packet id, a Response Topic `tierwise/{site}/{feature}/response/{client_id}` and 8 bytes
  of Correlation Data; the broker's PUBACK (4 bytes);
- the answer PUBLISH at QoS 0 to the Response Topic, with the Correlation Data (no packet
  id, no acknowledgement: an answer is worth something only until its deadline).

About 150-200 bytes an exchange for short names: next to a 100-byte reading, more than the
data itself. `http` adds nothing here: the plan's byte figures count HTTP bodies only
(headers are not modelled), as they always have.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

PREFIX = "tierwise"
CLIENT_ID_CHARS = 23  # the longest client id every MQTT 3.1.1 broker must accept
CORRELATION_BYTES = 8
PUBACK_BYTES = 4  # v5 PUBACK: fixed header, remaining length 2, packet id (reason omitted)


def _varint_bytes(n: NDArray[np.float64]) -> NDArray[np.float64]:
    """Bytes of MQTT's variable-length "remaining length" encoding of n."""
    return np.select([n < 128, n < 16_384, n < 2_097_152], [1.0, 2.0, 3.0], 4.0)


def mqtt_exchange_overhead(
    site_chars: ArrayLike, feature_chars: ArrayLike, payload: ArrayLike, result: ArrayLike
) -> NDArray[np.float64]:
    """MQTT v5 bytes of one request/answer exchange beyond `payload` + `result`, as the device
    and a cloud broker exchange them (elementwise over arrays of name lengths and sizes)."""
    site, feature = np.asarray(site_chars, float), np.asarray(feature_chars, float)
    names = len(PREFIX) + site + feature
    request_topic = names + len("///request")
    response_topic = names + len("///response/") + CLIENT_ID_CHARS
    correlation = 1 + 2 + CORRELATION_BYTES  # property id, length, data
    # variable headers: topic (length-prefixed), packet id (QoS 1 only), properties (length,
    # then each)
    request_header = (2 + request_topic) + 2 + 1 + (1 + 2 + response_topic) + correlation
    answer_header = (2 + response_topic) + 1 + correlation
    request_rest = request_header + np.asarray(payload, float)
    answer_rest = answer_header + np.asarray(result, float)
    framing = (1 + _varint_bytes(request_rest) + request_header) + (
        1 + _varint_bytes(answer_rest) + answer_header
    )
    return np.asarray(framing + PUBACK_BYTES, dtype=np.float64)
