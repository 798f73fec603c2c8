"""How a federated training job runs: data, model, rounds, privacy and compression settings.

A training job (`model.py`) says *what* is retrained and where its data may go; the plan
decides centralized or federated. This optional `federated:` block says *how* a federated
run goes when `tierwise federate` executes it on Flower. Every field has a default, so a job
without the block still runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierwise.spec.units import Duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DifferentialPrivacy(_Strict):
    """Client-level DP: each site clips its update, the aggregate gets Gaussian noise.

    The privacy budget (epsilon at `delta`) is computed by an RDP accountant every round.
    """

    clip: float = Field(1.0, gt=0, description="L2 bound on each site's update")
    noise_multiplier: float = Field(
        1.0, gt=0, description="noise standard deviation / clip (per summed update)"
    )
    delta: float = Field(1e-5, gt=0, lt=1, description="delta at which epsilon is reported")


class SecureAggregation(_Strict):
    """Flower's SecAgg+: the cloud learns only the sum of the sites' updates."""

    shares: float = Field(
        1.0, gt=0, le=1, description="share of the other sites each site's secrets go to"
    )
    threshold: float = Field(
        0.5, gt=0, le=1, description="share of those needed to unmask (tolerates dropouts)"
    )
    clipping_range: float = Field(
        8.0, gt=0, description="parameters are clipped to +-this before quantization"
    )


class FederatedTraining(_Strict):
    """Settings of a federated run; defaults suit the bundled digits scenario."""

    dataset: Literal["digits"] = Field(
        "digits", description="real data shipped with scikit-learn, split over the sites"
    )
    dirichlet_alpha: float = Field(
        0.5, gt=0, description="label skew across sites: small = each site sees few classes"
    )
    hidden_units: int = Field(64, ge=1, le=4096, description="width of the MLP's hidden layer")
    local_epochs: int = Field(1, ge=1, le=100, description="passes over local data per round")
    learning_rate: float = Field(0.1, gt=0, le=10)
    batch_size: int = Field(32, ge=1)
    min_sites: int | None = Field(
        None,
        ge=1,
        description="a round with fewer replies fails closed (default: half the sites, >= 2)",
    )
    round_timeout: Duration = Field(60.0, description="how long a round waits for replies")
    proximal_mu: float = Field(0.1, ge=0, description="FedProx proximal term weight")
    trim_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="trimmed_mean: share cut at each end per coordinate"
    )
    byzantine_sites: int = Field(1, ge=0, description="krum: sites assumed malicious")
    dp: DifferentialPrivacy | None = None
    secagg: SecureAggregation | None = None
    compression_bits: int | None = Field(
        None, ge=2, le=16, description="quantize each update to this many bits (e.g. 8)"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _compatible(self) -> FederatedTraining:
        if self.round_timeout <= 0:
            raise ValueError("round_timeout must be positive, like 60s")
        if self.secagg is not None and self.compression_bits is not None:
            raise ValueError(
                "compression_bits cannot be combined with secagg: SecAgg+ quantizes the "
                "updates itself"
            )
        if self.dp is not None and self.compression_bits is not None:
            raise ValueError(
                "compression_bits cannot be combined with dp: quantizing after clipping "
                "would break the clipping bound the privacy budget relies on"
            )
        if self.dp is not None and self.secagg is not None:
            raise ValueError(
                "dp and secagg cannot be combined yet: Flower 1.42's clipping mod does not "
                "accept SecAgg+ messages"
            )
        return self
