"""The baseline tierwise is measured against: the same task on Flower with default settings.

Same ClientApp, data, model and FedAvg; but the ServerApp is Flower's own `Strategy.start`
(its `send_and_receive` polls every 3 s) and the sites run stock `flower-supernode`, which
starts a fresh `flwr-clientapp` process for every message. Used by benchmarks/federated.py.
Per-round times come from the `evaluate_fn` hook Flower calls after every round.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from tierwise.federate import mlp
from tierwise.federate.model_record import shape_config, to_record
from tierwise.federate.progress import PROGRESS_FILE, ProgressLog
from tierwise.federate.rounds import train_config
from tierwise.federate.settings import RunSettings

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    settings = RunSettings.load(Path(str(context.run_config["settings"])))
    logging.getLogger("flwr").setLevel(logging.WARNING)
    progress = ProgressLog(Path(settings.run_dir) / PROGRESS_FILE)
    shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
    params = mlp.init_params(shape, settings.seed)
    arrays = to_record(params)
    every = len(settings.sites)
    strategy = FedAvg(min_train_nodes=every, min_evaluate_nodes=every, min_available_nodes=every)
    marks: list[float] = []

    def round_finished(server_round: int, _arrays: ArrayRecord) -> MetricRecord | None:
        marks.append(time.monotonic())
        if server_round > 0:
            seconds = marks[-1] - marks[-2]
            progress.write("round", round=server_round, seconds=seconds, participants=every)
        else:
            progress.write("start", sites=settings.sites, nodes=every)
        return None

    try:
        result = strategy.start(
            grid=grid,
            initial_arrays=arrays,
            num_rounds=settings.rounds,
            timeout=settings.round_timeout,
            train_config=ConfigRecord(train_config(settings, 0)),
            evaluate_config=ConfigRecord(shape_config(shape)),
            evaluate_fn=round_finished,
        )
    except Exception as exc:
        progress.write("failed", reason=f"{type(exc).__name__}: {exc}")
        return
    accuracy = _final_accuracy(result.evaluate_metrics_clientapp)
    progress.write("done", rounds=settings.rounds, accuracy=accuracy)


def _final_accuracy(per_round: dict[int, MetricRecord]) -> float | None:
    if not per_round:
        return None
    last = per_round[max(per_round)]
    value = last.get("eval-acc")
    return float(value) if isinstance(value, int | float) else None
