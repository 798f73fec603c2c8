"""The devices of one site: `python -m tierwise.up.devices CONFIG.json` streams real data.

One process per site plays all of its devices. For every feature, requests arrive as a
Poisson stream at the (scaled) rate of all the site's devices together, spread over a few
device streams; each request carries one row of the scenario's held-out test split (real
or labelled-generated data, never trained on) and its true label as feedback. Depending on
where the feature runs:

- `agent`: POST to the site's edge agent `/v1/predict/{feature}`, or with `--protocol mqtt`
  publish to `tierwise/{site}/{feature}/request` on the site's broker (QoS 1, MQTT v5) and
  take the answer from the Response Topic;
- `direct`: POST to the cloud's `/v1/infer/{feature}` through the site's WAN (cloud-only);
- `device`: the device runs the verified package itself (ONNX Runtime, in this process).

Traffic is open-loop: a slow answer does not slow the arrivals down, so queueing shows as
latency, as it would in a plant. The process prints `devices SITE ready`, starts on SIGUSR1
(so every site starts at the same moment), warms up for `warmup_s` on uncounted traffic,
prints one JSON line of figures per interval,
and after `duration_s` (or SIGTERM) waits briefly for answers in flight, writes its summary
JSON and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tierwise.edge.mqtt_device import MqttDevice
from tierwise.errors import LinkError
from tierwise.up.device_stats import FeatureStats
from tierwise.up.http_client import HttpError, KeepAliveClient
from tierwise.up.shift import shifted

STREAMS_PER_FEATURE = 16  # device streams per feature and site (each in order in the outbox)
END_GRACE_S = 5.0  # how long answers still in flight are awaited once the run is over
MAX_TIMEOUT_S = 20.0


class FeatureTraffic(BaseModel):
    """One feature's traffic at this site."""

    model_config = ConfigDict(extra="forbid")

    name: str
    mode: Literal["agent", "direct", "device"]
    rate: float = Field(gt=0, description="requests/s, all devices of the site together")
    deadline_s: float = Field(gt=0)
    percentile: float
    data: Path = Field(description=".npz with x (rows) and y (labels): the test split")
    classes: list[str] = Field(description="the package's class labels, in output order")
    package: Path | None = Field(None, description="device mode: the package to run")
    trust: Path | None = Field(None, description="device mode: the key it must be signed by")
    variant: str | None = Field(None, description="device mode: the variant (default smallest)")
    shift: dict[str, float] | None = Field(
        None,
        description="from at_s into the run, rows shifted by gain, offset, noise (up/shift.py)",
    )
    held_out_labels: bool = Field(
        False,
        description="the site is told the labels of even rows only, and accuracy is counted "
        "on odd rows only: what a retraining at the site learns from is never what it is "
        "judged on (tierwise up --learn)",
    )


class MqttConfig(BaseModel):
    """The site's MQTT broker, as the devices log in to it."""

    model_config = ConfigDict(extra="forbid")

    url: str
    username: str | None = None
    password: str | None = Field(None, repr=False)
    client_id: str


class DevicesConfig(BaseModel):
    """Everything the device process of one site needs."""

    model_config = ConfigDict(extra="forbid")

    site: str
    agent_url: str | None = None
    mqtt: MqttConfig | None = None  # agent features over MQTT instead of HTTP
    cloud_url: str | None = None  # the site's WAN proxy in front of the cloud
    token_file: Path | None = None
    duration_s: float = Field(gt=0)
    seed: int = 0
    stats_interval_s: float = 1.0
    warmup_s: float = Field(0.0, ge=0, description="uncounted traffic before the run")
    max_in_flight: int = 256
    summary: Path
    features: list[FeatureTraffic]


class Feature:
    """One feature's data, stats and way to get an answer."""

    def __init__(self, traffic: FeatureTraffic, index: int, seed: int) -> None:
        self.traffic = traffic
        with np.load(traffic.data, allow_pickle=False) as data:
            x, y = np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"])
        lookup = {c: i for i, c in enumerate(traffic.classes)}
        self.labels = [lookup.get(str(label), -1) for label in y]
        self.rows = [json.dumps(row.tolist()) for row in x]  # serialized once
        self.x = x
        self.before = (self.rows, self.x)
        self.after = self.before
        if traffic.shift is not None:
            x_after = shifted(x, traffic.shift, seed * 1000 + index)
            self.after = ([json.dumps(row.tolist()) for row in x_after], x_after)
        self.rng = random.Random(seed * 1000 + index)
        self.stats = FeatureStats(traffic.name, traffic.deadline_s * 1000, traffic.percentile)
        self.in_flight = 0
        self.model: Any = None
        if traffic.mode == "device":
            from tierwise.package.runtime import load_verified

            if traffic.package is None or traffic.trust is None:
                raise ValueError(f"{traffic.name}: device mode needs a package and a key")
            self.model = load_verified(traffic.package, [traffic.trust], variant=traffic.variant)
        timeout = min(traffic.deadline_s + 0.5, MAX_TIMEOUT_S)
        self.timeout = timeout
        self.timeout_is_miss = timeout >= traffic.deadline_s

    def sent_label(self, i: int) -> int:
        """The label the site is told with row i (-1: none)."""
        return -1 if self.traffic.held_out_labels and i % 2 else self.labels[i]

    def scored_label(self, i: int) -> int:
        """The label row i's answer is scored against (-1: not scored)."""
        return -1 if self.traffic.held_out_labels and not i % 2 else self.labels[i]

    def shift_now(self) -> None:
        """From now on the devices send the shifted rows (same order, same labels)."""
        self.rows, self.x = self.after


class Devices:
    """All devices of one site."""

    def __init__(self, config: DevicesConfig) -> None:
        self.config = config
        self.features = [Feature(t, i, config.seed) for i, t in enumerate(config.features)]
        self.agent = KeepAliveClient(config.agent_url) if config.agent_url else None
        self.mqtt: MqttDevice | None = None
        if config.mqtt is not None:
            from tierwise.edge.mqtt_wire import BrokerAddress, MqttCredentials

            m = config.mqtt
            address = BrokerAddress.parse(m.url)
            credentials = MqttCredentials(m.username, m.password)
            self.mqtt = MqttDevice(address, config.site, m.client_id, credentials)
        self.cloud = None
        if config.cloud_url and config.token_file is not None:
            token = config.token_file.read_text("utf-8").strip()
            self.cloud = KeepAliveClient(config.cloud_url, {"Authorization": f"Bearer {token}"})
        self.tasks: set[asyncio.Task[None]] = set()
        self.timeline: list[dict[str, Any]] = []
        self.warming = False
        self.run_started_wall: float | None = None  # time.time() as the measured run starts

    async def run(self, stop: asyncio.Event) -> None:
        if self.mqtt is not None:
            await self.mqtt.connect()
        if self.config.warmup_s > 0:
            # Connections, caches and first code paths warm up on traffic that is not
            # counted (its events go to `<feature>.warmup` streams), then the run starts.
            self.warming = True
            await self._phase(asyncio.Event(), self.config.warmup_s, ticker=False)
            self.warming = False
            for f in self.features:
                f.stats = FeatureStats(f.traffic.name, f.stats.deadline_ms, f.stats.percentile)
        self.run_started_wall = time.time()
        loop = asyncio.get_running_loop()
        timers = [
            loop.call_later(f.traffic.shift["at_s"], f.shift_now)
            for f in self.features
            if f.traffic.shift is not None
        ]
        try:
            await self._phase(stop, self.config.duration_s, ticker=True)
        finally:
            for timer in timers:
                timer.cancel()
        for client in (self.agent, self.cloud):
            if client is not None:
                client.close()
        if self.mqtt is not None:
            await self.mqtt.close()

    async def _phase(self, stop: asyncio.Event, duration: float, ticker: bool) -> None:
        start = time.monotonic()
        report = asyncio.create_task(self._report(start, stop)) if ticker else None
        arrivals = [
            asyncio.create_task(self._arrivals(f, start, duration, stop)) for f in self.features
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), duration)
        stop.set()
        await asyncio.gather(*arrivals, return_exceptions=True)
        if self.tasks:  # answers in flight: wait a little, then count them as unfinished
            await asyncio.wait(list(self.tasks), timeout=END_GRACE_S)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if report is not None:
            report.cancel()
            await asyncio.gather(report, return_exceptions=True)
            self._tick(time.monotonic() - start)

    async def _arrivals(
        self, feature: Feature, start: float, duration: float, stop: asyncio.Event
    ) -> None:
        rate = feature.traffic.rate
        at = start + feature.rng.expovariate(rate)
        n = 0
        while not stop.is_set() and at - start < duration:
            delay = at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
            n += 1
            if feature.in_flight >= self.config.max_in_flight:
                feature.stats.record_shed()
            else:
                task = asyncio.create_task(self._request(feature, n))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            at += feature.rng.expovariate(rate)

    async def _request(self, feature: Feature, n: int) -> None:
        t = feature.traffic
        i = feature.rng.randrange(len(feature.rows))
        label = feature.scored_label(i)
        stream = f"{t.name}.warmup" if self.warming else f"{t.name}.d{n % STREAMS_PER_FEATURE:02d}"
        feature.stats.sent += 1
        feature.in_flight += 1
        sent = time.perf_counter()
        try:
            if t.mode == "device":
                stats = feature.stats
                stats.request_bytes += feature.x[i].nbytes  # in memory: nothing crosses a link
                probs = np.asarray(feature.model.predict(feature.x[i : i + 1]))
                elapsed = (time.perf_counter() - sent) * 1000
                stats.record_answer(
                    elapsed, "device", "on the device", False, _correct(probs, label)
                )
                return
            await self._over_http(feature, i, label, stream, sent)
        except asyncio.CancelledError:
            feature.stats.unfinished += 1
            raise
        finally:
            feature.in_flight -= 1

    async def _over_http(
        self, feature: Feature, i: int, label: int, stream: str, sent: float
    ) -> None:
        t, stats = feature.traffic, feature.stats
        if t.mode == "agent" and self.mqtt is not None:
            await self._over_mqtt(self.mqtt, feature, i, label, stream, sent)
            return
        if t.mode == "agent":
            client, path = self.agent, f"/v1/predict/{t.name}"
            told = feature.sent_label(i)
            labels = f',"labels":[{told}]' if told >= 0 else ""
            body = f'{{"inputs":[{feature.rows[i]}]{labels},"stream":"{stream}"}}'
        else:
            client, path = self.cloud, f"/v1/infer/{t.name}"
            body = f'{{"inputs":[{feature.rows[i]}]}}'
        assert client is not None
        content = body.encode()
        stats.request_bytes += len(content)
        try:
            status, payload = await client.post(path, content, feature.timeout)
        except TimeoutError:
            _timed_out(feature)
            return
        except HttpError as exc:
            stats.record_failure(str(exc).split(":", 1)[0])
            return
        elapsed = (time.perf_counter() - sent) * 1000
        if status != 200:
            stats.record_failure(f"HTTP {status}")
            return
        stats.response_bytes += len(payload)
        answer = json.loads(payload)
        if t.mode == "agent":
            _record_agent_answer(feature, answer, elapsed, label)
        else:
            probs = np.asarray(answer["outputs"], dtype=np.float64)
            stats.record_answer(elapsed, "cloud", "cloud", False, _correct(probs, label))

    async def _over_mqtt(
        self, mqtt: MqttDevice, feature: Feature, i: int, label: int, stream: str, sent: float
    ) -> None:
        t, stats = feature.traffic, feature.stats
        told = feature.sent_label(i)
        labels = f',"labels":[{told}]' if told >= 0 else ""
        # sent_at: a request the broker held past the feature's deadline is answered expired
        body = (
            f'{{"inputs":[{feature.rows[i]}]{labels},"stream":"{stream}","sent_at":{time.time()}}}'
        )
        content = body.encode()
        stats.request_bytes += len(content)
        try:
            payload = await mqtt.request(t.name, content, feature.timeout)
        except TimeoutError:
            _timed_out(feature)
            return
        except LinkError as exc:
            stats.record_failure(str(exc).split(":", 1)[0])
            return
        elapsed = (time.perf_counter() - sent) * 1000
        answer = json.loads(payload)
        if answer.get("status") != 200:
            stats.record_failure(f"MQTT {answer.get('error', answer.get('status'))}")
            return
        stats.response_bytes += len(payload)
        _record_agent_answer(feature, answer, elapsed, label)

    async def _report(self, start: float, stop: asyncio.Event) -> None:
        interval = self.config.stats_interval_s
        while not stop.is_set():
            await asyncio.sleep(interval)
            self._tick(time.monotonic() - start)

    def _tick(self, t: float) -> None:
        line = {
            "t": round(t, 3),
            "site": self.config.site,
            "in_flight": len(self.tasks),
            "features": {f.traffic.name: f.stats.window() for f in self.features},
        }
        self.timeline.append(line)
        print(json.dumps(line), flush=True)

    def summary(self) -> dict[str, Any]:
        return {
            "site": self.config.site,
            "run_started_wall": self.run_started_wall,
            "features": {
                f.traffic.name: {
                    **f.stats.summary(),
                    "mode": f.traffic.mode,
                    "rate": f.traffic.rate,
                }
                for f in self.features
            },
            "timeline": [{"t": line["t"], "features": line["features"]} for line in self.timeline],
        }


def _correct(probs: np.ndarray, label: int) -> bool | None:
    if label < 0 or probs.ndim != 2 or len(probs) != 1:
        return None
    return int(np.argmax(probs[0])) == label


async def _main(config: DevicesConfig) -> None:
    devices = Devices(config)
    loop = asyncio.get_running_loop()
    go, stop = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, go.set)

    def halt() -> None:
        stop.set()
        go.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, halt)
    print(f"devices {config.site} ready", flush=True)
    await go.wait()
    if not stop.is_set():
        await devices.run(stop)
    config.summary.write_text(json.dumps(devices.summary()), encoding="utf-8")
    print(f"devices {config.site} done", flush=True)


def _timed_out(feature: Feature) -> None:
    """No answer within the device's timeout: a miss where the deadline is the timeout."""
    if feature.timeout_is_miss:
        feature.stats.record_failure("no answer by the deadline")
    else:
        feature.stats.unfinished += 1


def _record_agent_answer(
    feature: Feature, answer: dict[str, Any], elapsed: float, label: int
) -> None:
    """An edge agent's answer (HTTP or MQTT carry the same fields)."""
    probs = np.asarray(answer["outputs"], dtype=np.float64)
    feature.stats.record_answer(
        elapsed,
        answer["answered_by"],
        answer["reason"],
        bool(answer["degraded"]),
        _correct(probs, label),
        answer.get("stream"),
        answer.get("event_seq"),
        answer.get("version"),
    )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m tierwise.up.devices CONFIG.json")
    config = DevicesConfig.model_validate_json(Path(args[0]).read_text("utf-8"))
    try:
        import uvloop

        uvloop.run(_main(config))
    except ImportError:
        asyncio.run(_main(config))


if __name__ == "__main__":
    main()
