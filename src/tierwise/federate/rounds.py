"""The cloud's round loop: configure, collect within the deadline, aggregate, evaluate, record.

Flower's `Strategy.start` runs rounds too, but it waits without a bound when sites are
missing and reports nothing per site. This loop drives the same Flower strategy methods
(`configure_train`, `aggregate_train`) and adds what a fleet needs:
- a deadline per round; a site that misses it is dropped for the rest of the run;
- fail closed: a round with fewer replies than the minimum stops the run with the reason;
- per-site and global loss/accuracy, bytes up and down, seconds and privacy spent per round.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    RecordDict,
)
from flwr.app.typing import ConfigRecordValues
from flwr.serverapp.strategy import Strategy

from tierwise.errors import TierwiseError
from tierwise.federate import mlp
from tierwise.federate.metered_grid import MeteredGrid
from tierwise.federate.model_record import from_record, shape_config, to_record
from tierwise.federate.progress import ProgressLog
from tierwise.federate.secagg import legacy_metrics, secagg_round, secagg_train_replies
from tierwise.federate.settings import RunSettings
from tierwise.federate.strategies import build_strategy, privacy_spent

MODEL_FILE = "model.npz"


class RoundFailedError(TierwiseError):
    """Training stopped on purpose (fail closed); the message says which round and why."""


def run_rounds(
    grid: MeteredGrid, context: Context, settings: RunSettings, progress: ProgressLog
) -> mlp.Params:
    """Train for `settings.rounds` rounds; returns the final global parameters.

    One message exchange per round: each site first evaluates the global model it receives
    (the previous round's result) on its held-out rows, then trains from it. So round r's
    accuracy arrives with round r+1's replies, and a last evaluate-only exchange scores the
    final model; each round's record is written once its accuracy is known.
    """
    roster = connect_sites(grid, settings)
    progress.write("start", sites=sorted(roster.values()), nodes=len(roster))
    strategy = build_strategy(settings)
    shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
    params = initial_params(settings)
    if mlp.shape_of(params) != shape:
        raise RoundFailedError(
            f"the initial model {settings.initial_model} has shape {mlp.shape_of(params)}, "
            f"the run expects {shape}"
        )
    arrays = to_record(params)
    models = Path(settings.run_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    pending: dict[str, Any] | None = None  # the last round, waiting for its evaluation
    for server_round in range(1, settings.rounds + 1):
        started = time.monotonic()
        grid.round = server_round
        try:
            live = _live_sites(grid, settings, roster, server_round)
            arrays, train = _train(grid, context, settings, strategy, server_round, arrays, live)
        except RoundFailedError:
            if pending is not None:  # the last good round, without the evaluation it lost
                progress.write("round", **_with_evals(pending, roster, {}))
            raise
        down, up = grid.take_traffic()
        evals = {node: _eval_part(m) for node, m in train.items()}
        if pending is None:
            progress.write("initial", **{"global": _global_eval(roster, evals)})
        else:
            progress.write("round", **_with_evals(pending, roster, evals))
        pending = _round_record(settings.sites, roster, server_round, train, down, up, started)
        spent = privacy_spent(strategy)
        if spent is not None:
            pending["epsilon"], pending["delta"] = spent
        params = from_record(arrays, shape)
        mlp.save_params(models / f"round-{server_round:03d}.npz", params)
    started = time.monotonic()
    grid.round = settings.rounds + 1
    evals = _evaluate(grid, settings, settings.rounds, arrays)
    down, up = grid.take_traffic()
    if pending is not None:
        _add_traffic(pending, roster, down, up)
        progress.write("round", **_with_evals(pending, roster, evals))
    mlp.save_params(Path(settings.run_dir) / MODEL_FILE, params)
    progress.write(
        "done",
        rounds=settings.rounds,
        model=str(Path(settings.run_dir) / MODEL_FILE),
        final_evaluation_seconds=time.monotonic() - started,
    )
    return params


def initial_params(settings: RunSettings) -> mlp.Params:
    """Round 0's global model: the given weights, else a seeded random initialisation."""
    if settings.initial_model is None:
        shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
        return mlp.init_params(shape, settings.seed)
    return mlp.load_params(Path(settings.initial_model))


def connect_sites(grid: MeteredGrid, settings: RunSettings) -> dict[int, str]:
    """Wait for the sites' SuperNodes, then ask each which site it is (node id -> site)."""
    deadline = time.monotonic() + settings.connect_timeout
    wanted = len(settings.sites)
    while len(list(grid.get_node_ids())) < wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    nodes = list(grid.get_node_ids())
    query = [
        Message(RecordDict({"config": ConfigRecord({})}), dst_node_id=n, message_type="query")
        for n in nodes
    ]
    roster: dict[int, str] = {}
    refusals: list[str] = []  # a site's ClientApp that cannot load its data says why
    # A SuperNode registers before its ClientApp process has finished importing; on a loaded
    # machine that takes longer than a round, so the roll call gets what is left of the connect
    # budget (a site missing here would sit out the whole run).
    answer_within = max(settings.round_timeout, deadline - time.monotonic())
    for reply in grid.send_and_receive(query, timeout=answer_within):
        if not reply.has_error():
            roster[reply.metadata.src_node_id] = str(reply.content["site"]["site"])
        else:
            refusals.append(str(reply.error.reason))
    grid.drop(set(nodes) - set(roster))
    if len(roster) < settings.min_sites:
        why = f" ({'; '.join(refusals)})" if refusals else ""
        raise RoundFailedError(
            f"only {len(roster)} of {wanted} sites connected within "
            f"{settings.connect_timeout:.0f}s; the minimum is {settings.min_sites}{why}"
        )
    return roster


def train_config(settings: RunSettings, server_round: int) -> dict[str, ConfigRecordValues]:
    """What every site needs to run its local round (the strategy adds its own keys)."""
    shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
    return {
        **shape_config(shape),
        "server-round": server_round,
        "local-epochs": settings.local_epochs,
        "learning-rate": settings.learning_rate,
        "batch-size": settings.batch_size,
        "seed": settings.seed,
        # DP's sensitivity bound assumes every site weighs the same in the average
        "uniform-weight": settings.dp,
    }


def _live_sites(
    grid: MeteredGrid, settings: RunSettings, roster: dict[int, str], server_round: int
) -> list[int]:
    live = [n for n in grid.get_node_ids() if n in roster]
    if len(live) < settings.min_sites:
        gone = sorted(roster[n] for n in grid.dropped if n in roster)
        raise RoundFailedError(
            f"round {server_round}: only {len(live)} of {len(settings.sites)} sites remain "
            f"(dropped: {', '.join(gone) or 'none'}); the minimum is {settings.min_sites}"
        )
    grid.freeze(live)
    return live


def _train(
    grid: MeteredGrid,
    context: Context,
    settings: RunSettings,
    strategy: Strategy,
    server_round: int,
    arrays: ArrayRecord,
    live: list[int],
) -> tuple[ArrayRecord, dict[int, dict[str, Any]]]:
    config = train_config(settings, server_round)
    grid.received.clear()
    if settings.secagg:
        new = secagg_round(grid, context, settings, server_round, arrays, config, live)
        replies = secagg_train_replies(grid.received)
        metrics = {m.metadata.src_node_id: legacy_metrics(m) for m in replies}
        _check_quorum(settings, server_round, live, set(metrics), "trained")
    else:
        try:
            messages = list(
                strategy.configure_train(server_round, arrays, ConfigRecord(config), grid)
            )
        except ValueError as exc:  # e.g. DP accounting needs every site in every round
            raise RoundFailedError(f"round {server_round}: {exc}") from None
        replies = list(grid.send_and_receive(messages, timeout=settings.round_timeout))
        good = [m for m in replies if not m.has_error()]
        metrics = {m.metadata.src_node_id: dict(m.content["metrics"]) for m in good}
        _check_quorum(settings, server_round, live, set(metrics), "trained")
        new, _ = strategy.aggregate_train(server_round, replies)
    _drop_absent(grid, live, set(metrics))
    if new is None:
        raise RoundFailedError(
            f"round {server_round}: aggregation of {len(metrics)} site updates produced no "
            "model (see the SuperLink log)"
        )
    return new, metrics


def _evaluate(
    grid: MeteredGrid, settings: RunSettings, server_round: int, arrays: ArrayRecord
) -> dict[int, dict[str, Any]]:
    nodes = list(grid.get_node_ids())
    grid.freeze(nodes)
    shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
    config = ConfigRecord({"server-round": server_round, **shape_config(shape)})
    content = RecordDict({"arrays": arrays, "config": config})
    messages = [Message(content, dst_node_id=n, message_type=MessageType.EVALUATE) for n in nodes]
    replies = grid.send_and_receive(messages, timeout=settings.round_timeout)
    evals = {
        m.metadata.src_node_id: _eval_part(dict(m.content["metrics"]))
        for m in replies
        if not m.has_error()
    }
    _drop_absent(grid, nodes, set(evals))
    return evals


def _check_quorum(
    settings: RunSettings,
    server_round: int,
    asked: list[int],
    answered: set[int],
    what: str,
) -> None:
    if len(answered) >= settings.min_sites:
        return
    raise RoundFailedError(
        f"round {server_round}: only {len(answered)} of {len(asked)} sites {what} within "
        f"the {settings.round_timeout:g}s round timeout; the minimum is {settings.min_sites}"
    )


def _drop_absent(grid: MeteredGrid, asked: list[int], answered: set[int]) -> None:
    grid.drop(n for n in asked if n not in answered)


def _round_record(
    all_sites: list[str],
    roster: dict[int, str],
    server_round: int,
    train: dict[int, dict[str, Any]],
    down: dict[int, int],
    up: dict[int, int],
    started: float,
) -> dict[str, Any]:
    # Every configured site has an entry: one that never answered the roll call is as absent
    # from the round as one that died in it, and the report must say so rather than omit it.
    node_of = {site: node for node, site in roster.items()}
    sites: dict[str, dict[str, Any]] = {}
    for site in sorted(all_sites):
        node = node_of.get(site, -1)
        t = train.get(node)
        sites[site] = {
            "status": "ok" if t is not None else "absent",
            "train_loss": _f(t, "train-loss"),
            "train_examples": _f(t, "train-examples"),
            "eval_loss": None,
            "eval_acc": None,
            "eval_examples": None,
            "confidence_counts": None,
            "bytes_down": down.get(node, 0),
            "bytes_up": up.get(node, 0),
        }
    return {
        "round": server_round,
        "seconds": time.monotonic() - started,
        "participants": len(train),
        "bytes_down": sum(down.values()),
        "bytes_up": sum(up.values()),
        "sites": sites,
    }


def _with_evals(
    record: dict[str, Any], roster: dict[int, str], evals: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The record, with each site's evaluation of the round's model and their global mean."""
    for node, metrics in evals.items():
        site = record["sites"].get(roster.get(node, ""))
        if site is not None:
            site.update(
                eval_loss=metrics["eval-loss"],
                eval_acc=metrics["eval-acc"],
                eval_examples=metrics["eval-examples"],
                confidence_counts=metrics["eval-confidence"],
            )
    record["global"] = _global(record["sites"])
    return record


def _global_eval(roster: dict[int, str], evals: dict[int, dict[str, Any]]) -> dict[str, Any]:
    sites = {
        roster[n]: {
            "eval_loss": e["eval-loss"],
            "eval_acc": e["eval-acc"],
            "eval_examples": e["eval-examples"],
            "confidence_counts": e["eval-confidence"],
            "train_loss": None,
            "train_examples": None,
        }
        for n, e in evals.items()
        if n in roster
    }
    return _global(sites)


def _add_traffic(
    record: dict[str, Any],
    roster: dict[int, str],
    down: dict[int, int],
    up: dict[int, int],
) -> None:
    """Charge the final evaluation exchange's bytes to the last round."""
    for node, site in roster.items():
        entry = record["sites"][site]
        entry["bytes_down"] += down.get(node, 0)
        entry["bytes_up"] += up.get(node, 0)
    record["bytes_down"] += sum(down.values())
    record["bytes_up"] += sum(up.values())


def _eval_part(metrics: dict[str, Any]) -> dict[str, Any]:
    """A site's evaluation of the model it received (sent along with its training reply);
    the confidence histogram is None where the reply had none (SecAgg+'s scalar metrics)."""
    counts = metrics.get("eval-confidence")
    return {
        "eval-loss": float(metrics.get("eval-loss", 0.0)),
        "eval-acc": float(metrics.get("eval-acc", 0.0)),
        "eval-examples": float(metrics.get("eval-examples", 0.0)),
        "eval-confidence": None if counts is None else [int(c) for c in counts],
    }


def _global(sites: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Example-weighted means over sites = the metric on the union of their test rows; the
    confidence histograms add up (None unless every evaluating site sent one)."""
    evaluated = [s for s in sites.values() if s["eval_examples"]]
    histograms = [s.get("confidence_counts") for s in evaluated]
    summed = None
    if histograms and all(h is not None for h in histograms):
        summed = [int(c) for c in np.sum(np.asarray(histograms, dtype=np.int64), axis=0)]
    return {
        "eval_loss": _weighted(sites, "eval_loss", "eval_examples"),
        "eval_acc": _weighted(sites, "eval_acc", "eval_examples"),
        "train_loss": _weighted(sites, "train_loss", "train_examples"),
        "eval_examples": int(sum(s["eval_examples"] for s in evaluated)),
        "confidence_counts": summed,
    }


def _weighted(sites: dict[str, dict[str, Any]], key: str, weight: str) -> float | None:
    rows = [s for s in sites.values() if s[weight] and s[key] is not None]
    total = sum(s[weight] for s in rows)
    return sum(s[key] * s[weight] for s in rows) / total if total else None


def _f(metrics: dict[str, Any] | None, key: str) -> float | None:
    if metrics is None or key not in metrics:
        return None
    return float(metrics[key])
