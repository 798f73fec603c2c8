"""The site side of training: a Flower ClientApp that reads only its own site's shard.

Runs inside the site's long-lived ClientApp process (`site_worker`), next to the site's
SuperNode. What it sends back is Flower records holding model parameters and a handful of
scalar metrics, never rows of data. Mods, outermost first:
- SecAgg+ (when the round asks for it): masks the update so the cloud learns only the sum;
- update compression (when the round asks for it): quantizes the update;
- fixed clipping (when DP is on): bounds the update's L2 norm before noise is added.

`fault` in the node config makes a site misbehave on purpose (tests and chaos drills only;
no spec field reaches it): `scale100` or `signflip` poison the update, `crash` kills the
site's ClientApp process in the middle of training.
"""

from __future__ import annotations

import os
import signal
import zlib
from pathlib import Path
from typing import cast

import numpy as np
from flwr.app import (
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.app.typing import MetricRecordValues
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from tierwise.federate import mlp
from tierwise.federate.compression import compress_update_mod
from tierwise.federate.fieldsamples import field_shard
from tierwise.federate.model_record import from_record, shape_from_config, to_record
from tierwise.federate.sitedata import Shard, load_shard

_shards: dict[tuple[str, ...], Shard] = {}


def _when_secagg(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


def _when_clipping(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    config = msg.content.config_records.get("config")
    if config is not None and KEY_CLIPPING_NORM in config:
        return fixedclipping_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


app = ClientApp(mods=[_when_secagg, compress_update_mod, _when_clipping])


def site_shard(context: Context) -> Shard:
    """This site's data, as its SuperNode was configured: the field samples its edge agent
    kept (`field-data`, rows since `field-since`, split with `field-seed`), else the demo
    shard in its directory (`data-dir`)."""
    config = context.node_config
    key = tuple(str(config.get(k, "")) for k in ("data-dir", "field-data", "field-since"))
    if key not in _shards:
        if "field-data" in config:
            since = config.get("field-since")
            _shards[key] = field_shard(
                Path(str(config["field-data"])),
                str(config["site"]),
                since=None if since is None else float(cast(float, since)),
                seed=int(cast(int, config.get("field-seed", 0))),
            )
        else:
            _shards[key] = load_shard(Path(str(config["data-dir"])))
    return _shards[key]


@app.query()
def identify(msg: Message, context: Context) -> Message:
    """Which site this is and how much data it holds (counts only)."""
    shard = site_shard(context)
    info = ConfigRecord({"site": shard.site})
    counts = MetricRecord(
        {"train-examples": len(shard.y_train), "test-examples": len(shard.y_test)}
    )
    return Message(RecordDict({"site": info, "counts": counts}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Score the global model the cloud sent on local held-out rows, then train from it."""
    if "fitins.parameters" in msg.content.array_records:
        return _train_legacy(msg, context)
    config = msg.content.config_records["config"]
    shape = shape_from_config(config)
    params = from_record(msg.content.array_records["arrays"], shape)
    new, metrics = _local_round(params, config, context)
    reply = RecordDict({"arrays": to_record(new), "metrics": MetricRecord(metrics)})
    return Message(reply, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Loss and accuracy of the global model on this site's held-out rows."""
    config = msg.content.config_records["config"]
    shape = shape_from_config(config)
    params = from_record(msg.content.array_records["arrays"], shape)
    shard = fitting_shard(context, shape)
    metrics = MetricRecord({"num-examples": len(shard.y_test), **_scores(params, shard)})
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


def fitting_shard(context: Context, shape: mlp.MlpShape) -> Shard:
    """The site's data, refused (an error reply naming the site) if the model cannot take it."""
    shard = site_shard(context)
    columns = shard.x_train.shape[1]
    if columns != shape.features:
        raise ValueError(
            f"site {shard.site}: rows have {columns} columns, the model takes {shape.features}"
        )
    top = int(max(shard.y_train.max(initial=0), shard.y_test.max(initial=0)))
    if top >= shape.classes:
        raise ValueError(
            f"site {shard.site}: class index {top} but the model has {shape.classes} classes"
        )
    return shard


def _scores(params: mlp.Params, shard: Shard) -> dict[str, MetricRecordValues]:
    result = mlp.evaluate(params, shard.x_test, shard.y_test)
    return {
        "eval-loss": result.loss,
        "eval-acc": result.accuracy,
        "eval-examples": result.examples,
        "eval-confidence": list(result.confidence_counts),
    }


def _train_legacy(msg: Message, context: Context) -> Message:
    """The same round in Flower's legacy Fit format, which its SecAgg+ mod speaks."""
    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    config = ConfigRecord(dict(fitins.config))
    shape = shape_from_config(config)
    (vector,) = parameters_to_ndarrays(fitins.parameters)
    new, metrics = _local_round(mlp.unflatten(vector, shape), config, context)
    fitres = FitRes(
        status=Status(code=Code.OK, message=""),
        parameters=ndarrays_to_parameters([mlp.flatten(new)]),
        num_examples=int(cast(int, metrics["num-examples"])),
        # Fit metrics are scalars: the confidence histogram waits for the evaluate message
        metrics={
            k: float(cast(float, v))
            for k, v in metrics.items()
            if k != "num-examples" and not isinstance(v, list)
        },
    )
    return Message(compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=msg)


def _local_round(
    params: mlp.Params, config: ConfigRecord, context: Context
) -> tuple[mlp.Params, dict[str, MetricRecordValues]]:
    shard = fitting_shard(context, mlp.shape_of(params))
    server_round = int(cast(int, config.get("server-round", 0)))
    # score the model received before training on it: the cloud learns how the last
    # round's global model does here without another message exchange
    scores = _scores(params, shard)
    new, loss = mlp.train(
        params,
        shard.x_train,
        shard.y_train,
        epochs=int(cast(int, config["local-epochs"])),
        learning_rate=float(cast(float, config["learning-rate"])),
        batch_size=int(cast(int, config["batch-size"])),
        proximal_mu=float(cast(float, config.get("proximal-mu", 0.0))),
        seed=training_seed(int(cast(int, config.get("seed", 0))), server_round, shard.site),
    )
    new = _misbehave(context, server_round, params, new)
    weight = 1 if bool(config.get("uniform-weight", False)) else len(shard.y_train)
    return new, {
        "num-examples": weight,
        "train-examples": len(shard.y_train),
        "train-loss": loss,
        **scores,
    }


def training_seed(seed: int, server_round: int, site: str) -> int:
    """The same site, round and seed always train identically (tests rely on it)."""
    return (seed * 1_000_003 + server_round * 7_919 + zlib.crc32(site.encode())) % 2**32


def _misbehave(context: Context, server_round: int, old: mlp.Params, new: mlp.Params) -> mlp.Params:
    fault = str(context.node_config.get("fault", ""))
    from_round = int(cast(int, context.node_config.get("fault-round", 1)))
    if not fault or server_round < from_round:
        return new
    if fault == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "scale100":
        return [(o + 100.0 * (n - o)).astype(np.float32) for o, n in zip(old, new, strict=True)]
    if fault == "signflip":
        return [(o - (n - o)).astype(np.float32) for o, n in zip(old, new, strict=True)]
    return new
