"""What the simulator replays: one stream of requests per (feature, site) of an assignment.

An assignment is the planner's choice of one candidate per feature (the plan, or the
cloud-only / edge-only strategies). Each stream carries everything the request path needs:
placement, service times, bytes, links, deadline, and the rate profile of its site.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierwise.plan.candidates import Candidate
from tierwise.plan.latency import retransmit_probability, rto
from tierwise.simulate.arrivals import RateProfile, rate_profile
from tierwise.spec.model import Link, Spec
from tierwise.spec.tiers import Placement


@dataclass(frozen=True)
class Hop:
    """A link as one request sees it: log-normal round trip, loss penalty, bandwidth."""

    rtt_p50: float
    sigma: float  # of the log-normal round trip
    bandwidth: float  # bit/s
    p_retransmit: float  # chance the exchange meets a lost segment
    rto: float  # what that costs (s)

    @staticmethod
    def of(link: Link, n_bytes: float) -> Hop:
        from tierwise.plan.latency import lognormal_sigma

        return Hop(
            link.rtt_p50,
            lognormal_sigma(link.rtt_p50, link.rtt_p99),
            link.bandwidth,
            retransmit_probability(link, n_bytes),
            rto(link),
        )


@dataclass(frozen=True)
class Stream:
    """Requests of one feature at one site, and how they are answered."""

    feature: int
    site: int
    placement: Placement
    devices: int
    rate: float  # requests per device per second (before the profile)
    profile: RateProfile
    service: float  # s per request on the local tier (the cloud for CLOUD)
    cloud_service: float  # s per escalated request in the cloud
    share: float  # cascade: share of requests that are hard
    payload: float  # bytes
    result: float  # bytes
    deadline: float
    percentile: float
    lan: Hop
    wan: Hop
    telemetry: float  # bytes/s per device sent upstream while running locally

    @property
    def local(self) -> bool:
        return self.placement is not Placement.CLOUD


def build_streams(spec: Spec, choice: list[Candidate], duration: float) -> list[Stream]:
    """One stream per (feature, site with devices of its class) of the assignment."""
    out = []
    for cand in choice:
        feature = spec.features[cand.feature]
        n_bytes = feature.payload + feature.result
        for use in cand.sites:
            site = spec.sites[use.site]
            telemetry = 0.0
            if cand.placement is not Placement.CLOUD and feature.upstream is not None:
                telemetry = feature.upstream.rate * feature.upstream.size
            out.append(
                Stream(
                    feature=cand.feature,
                    site=use.site,
                    placement=cand.placement,
                    devices=use.devices,
                    rate=feature.rate,
                    profile=rate_profile(spec.traffic, duration, feature.name, site.name),
                    service=cand.service,
                    cloud_service=cand.cloud_service,
                    share=cand.escalated if cand.placement is Placement.CASCADE else 0.0,
                    payload=feature.payload,
                    result=feature.result,
                    deadline=feature.deadline,
                    percentile=feature.percentile,
                    lan=Hop.of(spec.links.device_edge, n_bytes),
                    wan=Hop.of(spec.wan(site), n_bytes),
                    telemetry=telemetry,
                )
            )
    return out
