"""`python -m tierwise.wan --target 127.0.0.1:8000 --rtt 60ms/250ms --loss 5% --outages 30s@60s`.

Runs the WAN proxy as its own process (as `tierwise up` does). It prints one line,
`listening on http://127.0.0.1:PORT`, once it accepts connections. SIGUSR1 starts an outage,
SIGUSR2 ends it; SIGTERM or SIGINT stops the proxy and prints its statistics as JSON.
`--capture FILE` appends every byte forwarded, both ways, to FILE (`tierwise.wan.capture`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path

from tierwise.wan.conditions import (
    LossMode,
    OutageMode,
    WanConditions,
    parse_outages,
    parse_seconds,
)
from tierwise.wan.proxy import WanProxy


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _fraction(text: str) -> float:
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a loss like 5% or 0.05, got {text!r}")
    return value


def _rtt(text: str) -> tuple[float, float]:
    p50, _, p99 = text.partition("/")
    return parse_seconds(p50), parse_seconds(p99 or p50)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, WanConditions]:
    parser = argparse.ArgumentParser(prog="python -m tierwise.wan", description=__doc__)
    parser.add_argument("--target", type=_host_port, required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=_host_port, default=("127.0.0.1", 0))
    parser.add_argument("--rtt", type=_rtt, default=(0.0, 0.0), help="P50/P99, e.g. 60ms/250ms")
    parser.add_argument("--loss", type=_fraction, default=0.0, help="per chunk, e.g. 5%%")
    parser.add_argument("--loss-mode", choices=[m.value for m in LossMode], default="stall")
    parser.add_argument("--outages", default="", help="DURATION@START,..., e.g. 30s@60s")
    parser.add_argument("--outage-mode", choices=[m.value for m in OutageMode], default="blackhole")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--capture", type=Path, default=None, help="append every forwarded byte to this file"
    )
    args = parser.parse_args(argv)
    try:
        conditions = WanConditions(
            rtt_p50_s=args.rtt[0],
            rtt_p99_s=args.rtt[1],
            loss=args.loss,
            loss_mode=LossMode(args.loss_mode),
            outages=parse_outages(args.outages),
            outage_mode=OutageMode(args.outage_mode),
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args, conditions


async def serve(args: argparse.Namespace, conditions: WanConditions) -> WanProxy:
    proxy = WanProxy(
        args.target, conditions, listen=args.listen, seed=args.seed, capture=args.capture
    )
    await proxy.start()
    print(f"listening on {proxy.url}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, proxy.set_down, True)
    loop.add_signal_handler(signal.SIGUSR2, proxy.set_down, False)
    await stop.wait()
    await proxy.close()
    return proxy


def main(argv: list[str] | None = None) -> None:
    args, conditions = parse_args(sys.argv[1:] if argv is None else argv)
    proxy = asyncio.run(serve(args, conditions))
    print(json.dumps(dataclasses.asdict(proxy.stats)), flush=True)


if __name__ == "__main__":
    main()
