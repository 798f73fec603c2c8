"""The spec's strategy names turned into Flower strategies, with DP and compression wrappers.

Every aggregation rule is Flower's own (FedAvg, FedProx, FedTrimmedAvg, FedMedian, Krum);
differential privacy is Flower's client-side fixed-clipping wrapper with its RDP
accountant (backed by Google's dp-accounting). tierwise adds only the decompression wrapper.
"""

from __future__ import annotations

from typing import Any

from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)
from flwr.supercore.privacy_accounting import (
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from tierwise.federate import mlp
from tierwise.federate.compression import DecompressUpdates
from tierwise.federate.settings import RunSettings


def build_strategy(settings: RunSettings) -> Strategy:
    """The Flower strategy for `settings`, wrapped for DP or compression when asked."""
    common: dict[str, Any] = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": settings.min_sites,
        "min_evaluate_nodes": settings.min_sites,
        "min_available_nodes": settings.min_sites,
    }
    inner: Strategy
    match settings.strategy:
        case "fedavg":
            inner = FedAvg(**common)
        case "fedprox":
            inner = FedProx(**common, proximal_mu=settings.proximal_mu)
        case "trimmed_mean":
            inner = FedTrimmedAvg(**common, beta=settings.trim_fraction)
        case "median":
            inner = FedMedian(**common)
        case "krum":
            inner = Krum(**common, num_malicious_nodes=settings.byzantine_sites)
        case other:
            raise ValueError(f'unknown strategy "{other}"')
    if settings.dp:
        return DifferentialPrivacyClientSideFixedClipping(
            inner,
            noise_multiplier=float(settings.dp_noise_multiplier or 0.0),
            clipping_norm=float(settings.dp_clip or 0.0),
            num_sampled_clients=len(settings.sites),
            accountant=make_accountant(settings),
        )
    if settings.compression_bits is not None:
        shape = mlp.MlpShape(settings.features, settings.hidden_units, settings.classes)
        return DecompressUpdates(inner, settings.compression_bits, mlp.segment_sizes(shape))
    return inner


def make_accountant(settings: RunSettings) -> RdpAccountant:
    """An RDP accountant for client-level DP where every site takes part in every round.

    All sites train every round, so there is no sampling amplification: each round is one
    Gaussian release with the configured noise multiplier over the sum of clipped updates.
    """
    return RdpAccountant(
        PrivacyConfig(
            target_delta=float(settings.dp_delta or 1e-5),
            population_size=len(settings.sites),
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )


def privacy_spent(strategy: Strategy) -> tuple[float, float] | None:
    """(epsilon, delta) spent so far, if the strategy accounts for privacy."""
    if isinstance(strategy, DifferentialPrivacyClientSideFixedClipping):
        spent = strategy.privacy_spent()
        if spent is not None:
            return float(spent.epsilon), float(spent.delta)
    return None
