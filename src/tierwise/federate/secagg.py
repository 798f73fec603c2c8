"""One training round under Flower's SecAgg+ protocol: the cloud learns only the sum.

In Flower 1.42 SecAgg+ exists as a workflow over the legacy (Fit/Evaluate) strategy API,
so a secure round is run by handing `SecAggPlusWorkflow` a `LegacyContext` holding
Flower's legacy FedAvg and the round's sites. Its four stages (keys, shares, masked
vectors, unmasking) travel through the metered grid like every other message; sites that
drop after sharing keys are unmasked from their neighbours' shares.
"""

from __future__ import annotations

from typing import Any, cast

from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.app.typing import ConfigRecordValues
from flwr.common import Scalar
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.server_config import ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key

from tierwise.federate.metered_grid import MeteredGrid
from tierwise.federate.model_record import WEIGHTS
from tierwise.federate.settings import RunSettings


def secagg_round(
    grid: MeteredGrid,
    context: Context,
    settings: RunSettings,
    server_round: int,
    arrays: ArrayRecord,
    train_config: dict[str, ConfigRecordValues],
    node_ids: list[int],
) -> ArrayRecord | None:
    """Run the SecAgg+ stages for one round; the new global arrays, or None if it halted."""
    strategy = LegacyFedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=settings.min_sites,
        min_evaluate_clients=0,
        min_available_clients=settings.min_sites,
        on_fit_config_fn=lambda _round: cast(dict[str, Scalar], dict(train_config)),
    )
    clients = SimpleClientManager()
    for node_id in node_ids:
        clients.register(GridClientProxy(node_id, grid, context.run_id))
    legacy = LegacyContext(
        context,
        config=ServerConfig(num_rounds=settings.rounds),
        strategy=strategy,
        client_manager=clients,
    )
    legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {Key.CURRENT_ROUND: server_round}
    )
    legacy.state.array_records[MAIN_PARAMS_RECORD] = arrays
    workflow = SecAggPlusWorkflow(
        num_shares=float(settings.secagg_shares or 1.0),
        reconstruction_threshold=float(settings.secagg_threshold or 0.5),
        clipping_range=float(settings.secagg_clipping_range or 8.0),
        timeout=settings.round_timeout,
    )
    workflow(grid, legacy)
    result = legacy.state.array_records[MAIN_PARAMS_RECORD]
    # the workflow stores a new record only when unmasking and aggregation succeeded
    if result is arrays:
        return None
    (weights,) = list(result.values())  # the legacy API numbers arrays; name it back
    return ArrayRecord({WEIGHTS: weights})


def secagg_train_replies(received: list[Message]) -> list[Message]:
    """The masked-vector replies of a SecAgg+ round (they carry each site's plain metrics)."""
    return [m for m in received if m.has_content() and "fitres.metrics" in m.content]


def legacy_metrics(reply: Message) -> dict[str, Any]:
    return dict(reply.content.config_records["fitres.metrics"])
