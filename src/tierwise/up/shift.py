"""`tierwise up --shift`: one site's input stream changes in the middle of a run, on purpose.

A field shift, made from the scenario's real test rows by a stated transformation — never by
inventing rows or labels: from `at` seconds into the measured run, the devices of one site
send, for one feature,

    x' = gain * x + offset * sd + noise * sd * N(0, 1)

per input column, `sd` being the column's standard deviation over the test rows (so `offset`
and `noise` mean the same on pixels and on spectra), with a fixed random seed. A sensor whose
gain drifted is `gain=1.3`; a dirtier signal is `noise=0.5`. The labels stay the rows' own.

The run then reports, for that site and feature, accuracy and the escalated share before and
after the shift, and when (if) the cloud's drift check said so (docs/learning.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tierwise.cli_options import parse_duration
from tierwise.errors import UsageError

_FORM = "SITE:FEATURE@TIME[,gain=G][,offset=O][,noise=SD]"
_HEAD = re.compile(r"^(?P<site>[^:@,\s]+):(?P<feature>[^:@,\s]+)@(?P<at>[^,\s]+)$")
_KNOBS = ("gain", "offset", "noise")


@dataclass(frozen=True)
class Shift:
    """Which stream changes, when, and how."""

    site: str
    feature: str
    at_s: float  # seconds into the measured run (after the warm-up)
    gain: float = 1.0
    offset: float = 0.0  # in standard deviations of each column
    noise: float = 0.0  # standard deviations of added Gaussian noise, per column

    def describe(self) -> str:
        parts = [f"x{self.gain:g}" if self.gain != 1 else ""]
        parts.append(f"{self.offset:+g} sd" if self.offset else "")
        parts.append(f"noise {self.noise:g} sd" if self.noise else "")
        how = ", ".join(p for p in parts if p) or "no change"
        return f"{self.site}/{self.feature} from {self.at_s:g}s: {how}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_shift(text: str) -> Shift:
    """`SITE:FEATURE@TIME[,gain=G][,offset=O][,noise=SD]`, e.g.
    `plant-north:safety-stop@20s,gain=1.3`."""
    head, *knobs = text.strip().split(",")
    match = _HEAD.match(head.strip())
    if match is None:
        raise UsageError(f"--shift {text!r}: expected {_FORM}")
    values: dict[str, float] = {}
    for knob in knobs:
        name, _, value = knob.partition("=")
        name = name.strip()
        if name not in _KNOBS or not value:
            raise UsageError(f"--shift {text!r}: {knob!r} is not one of {', '.join(_KNOBS)}=N")
        try:
            values[name] = float(value)
        except ValueError:
            raise UsageError(f"--shift {text!r}: {name}={value!r} is not a number") from None
    at_s = parse_duration(match["at"])
    shift = Shift(match["site"], match["feature"], at_s, **values)
    if shift.at_s < 0 or shift.noise < 0 or not np.isfinite([shift.gain, shift.offset]).all():
        raise UsageError(f"--shift {text!r}: time and noise must be 0 or more, gain finite")
    if (shift.gain, shift.offset, shift.noise) == (1.0, 0.0, 0.0):
        raise UsageError(f"--shift {text!r}: changes nothing; give gain, offset or noise")
    return shift


def check_shift(shift: Shift, served: dict[str, set[str]], duration_s: float) -> None:
    """The site must run the feature through its edge agent, and the shift fall in the run."""
    if shift.site not in served:
        raise UsageError(f"--shift: no site {shift.site!r}; sites: {', '.join(sorted(served))}")
    if shift.feature not in served[shift.site]:
        known = ", ".join(sorted(served[shift.site])) or "none"
        raise UsageError(
            f"--shift: {shift.site} does not serve {shift.feature!r} through its edge agent "
            f"(it does: {known})"
        )
    if shift.at_s >= duration_s:
        raise UsageError(f"--shift: at {shift.at_s:g}s, after the run's {duration_s:g}s")


def shifted(x: NDArray[np.floating], shift: dict[str, float], seed: int) -> NDArray[np.float32]:
    """The rows as the shifted sensors send them (the module's formula)."""
    rows = np.asarray(x, dtype=np.float64)
    sd = rows.std(axis=0)
    noise = np.random.default_rng(seed).standard_normal(rows.shape)
    out = shift["gain"] * rows + shift["offset"] * sd + shift["noise"] * sd * noise
    sent: NDArray[np.float32] = out.astype(np.float32)
    return sent
