"""Workloads: request streams (Poisson, bursty MMPP, daily pattern, CSV trace replay) with request
sizes and work from distributions, each drawn from its own (stream, replication, seed) generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sim.engine.request import Request
from sim.streams import Stream, stream_rng

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = 4096
"""Requests drawn per numpy call: vectorised, yet memory stays bounded for long workloads."""


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- request sizes -------------------------------------------------------------------------------


class FixedSize(_Spec):
    """Every request asks for `count` instances."""

    kind: Literal["fixed"] = "fixed"
    count: int = Field(ge=1)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.count, dtype=np.int64)


class GeometricSize(_Spec):
    """Geometric on 1, 2, ... with the given mean (many small requests, a few large)."""

    kind: Literal["geometric"] = "geometric"
    mean: float = Field(ge=1)
    max_count: int | None = Field(default=None, ge=1)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        counts = rng.geometric(1.0 / self.mean, n).astype(np.int64)
        return np.minimum(counts, self.max_count) if self.max_count else counts


class UniformSize(_Spec):
    """Uniform on low..high (inclusive)."""

    kind: Literal["uniform"] = "uniform"
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> UniformSize:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.low, self.high + 1, n, dtype=np.int64)


class ChoiceSize(_Spec):
    """One of `values`, with probabilities proportional to `weights` (equal if omitted)."""

    kind: Literal["choice"] = "choice"
    values: tuple[int, ...] = Field(min_length=1)
    weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _matching(self) -> ChoiceSize:
        if min(self.values) < 1:
            raise ValueError("values must be >= 1")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"{len(self.weights)} weights for {len(self.values)} values")
            if min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError("weights must be >= 0 and not all 0")
        return self

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        p = None
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=float)
            p = w / w.sum()
        return rng.choice(np.asarray(self.values, dtype=np.int64), size=n, p=p)


class LogNormalSize(_Spec):
    """Lognormal with the given mean and CV, rounded to a whole count (at least 1)."""

    kind: Literal["lognormal"] = "lognormal"
    mean: float = Field(ge=1)
    cv: float = Field(gt=0)
    max_count: int | None = Field(default=None, ge=1)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        sigma = math.sqrt(math.log1p(self.cv * self.cv))
        mu = math.log(self.mean) - 0.5 * sigma * sigma
        counts = np.maximum(1, np.rint(rng.lognormal(mu, sigma, n))).astype(np.int64)
        return np.minimum(counts, self.max_count) if self.max_count else counts


SizeSpec = Annotated[
    FixedSize | GeometricSize | UniformSize | ChoiceSize | LogNormalSize,
    Field(discriminator="kind"),
]


# --- per-instance work (multiples of the node's work_s); default: the node's own lognormal -------


class ExponentialWork(_Spec):
    """Exponential work, mean 1 (M/M/1-PS)."""

    kind: Literal["exponential"] = "exponential"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.exponential(1.0, n)


class DeterministicWork(_Spec):
    """Every instance needs exactly work_s."""

    kind: Literal["deterministic"] = "deterministic"

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.ones(n)


class HyperExponentialWork(_Spec):
    """Two-phase balanced-means hyperexponential with mean 1 and the given CV (> 1)."""

    kind: Literal["hyperexponential"] = "hyperexponential"
    cv: float = Field(gt=1)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        c2 = self.cv * self.cv
        p = 0.5 * (1.0 + math.sqrt((c2 - 1.0) / (c2 + 1.0)))
        # Balanced means: p/mu1 = (1-p)/mu2 = 1/2, so the mean is 1.
        mean1, mean2 = 0.5 / p, 0.5 / (1.0 - p)
        first = rng.random(n) < p
        return rng.exponential(1.0, n) * np.where(first, mean1, mean2)


WorkSpec = Annotated[
    ExponentialWork | DeterministicWork | HyperExponentialWork, Field(discriminator="kind")
]


# --- arrival processes ---------------------------------------------------------------------------


class WorkloadBase(_Spec):
    size: SizeSpec = FixedSize(count=1)
    """Instances per request."""
    tenants: int = Field(default=1, ge=1)
    """Requests come from tenants t0..t{n-1}, uniformly at random."""
    memory_mb: int = Field(default=128, ge=1)
    lifetime_s: float | None = Field(default=None, ge=0)
    """How long instances run once ready (None: until the end of the run)."""
    work: WorkSpec | None = None
    """Per-instance work multiplier; None: each node's own lognormal (its calibration)."""
    max_requests: int | None = Field(default=None, ge=1)
    """Stop after this many requests (whichever comes first with the duration)."""

    def arrival_times(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Chunks of nondecreasing arrival times."""
        raise NotImplementedError

    def requests(self, replication: int, seed: int) -> Iterator[Request]:
        """The request stream of one replication, lazily, in arrival order."""
        arrivals = stream_rng(Stream.ARRIVALS, replication, seed)
        sizes = stream_rng(Stream.SIZES, replication, seed)
        tenants = stream_rng(Stream.TENANTS, replication, seed)
        works = stream_rng(Stream.WORK_SCALE, replication, seed)
        request_id = 0
        for times in self.arrival_times(arrivals):
            counts = self._counts(times, sizes)
            who = tenants.integers(0, self.tenants, len(times)) if self.tenants > 1 else None
            for i, (t, count) in enumerate(zip(times.tolist(), counts.tolist(), strict=True)):
                if self.max_requests is not None and request_id >= self.max_requests:
                    return
                scale = None
                if self.work is not None:
                    scale = tuple(self.work.draw(count, works).tolist())
                # Values come from validated specs and numpy; skip re-validating each request.
                yield Request.model_construct(
                    request_id=request_id,
                    tenant=f"t{who[i]}" if who is not None else "t0",
                    count=count,
                    memory_mb=self.memory_mb,
                    arrival_s=t,
                    lifetime_s=self.lifetime_s,
                    work_scale=scale,
                )
                request_id += 1

    def _counts(self, times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.size.draw(len(times), rng)


class PoissonWorkload(WorkloadBase):
    """Requests arrive as a Poisson process."""

    kind: Literal["poisson"] = "poisson"
    rate_per_s: float = Field(gt=0)
    duration_s: float = Field(gt=0)

    def arrival_times(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        t = 0.0
        while True:
            times = t + np.cumsum(rng.exponential(1.0 / self.rate_per_s, _CHUNK))
            keep = times[times < self.duration_s]
            if keep.size:
                yield keep
            if keep.size < _CHUNK:
                return
            t = float(times[-1])


class MMPPWorkload(WorkloadBase):
    """Bursty arrivals: a Markov-modulated Poisson process. The hidden state cycles through
    `rates_per_s` (state i lasts an exponential time of mean `mean_sojourn_s[i]`); with two
    states and a zero rate this is the on/off process."""

    kind: Literal["mmpp"] = "mmpp"
    rates_per_s: tuple[float, ...] = Field(min_length=2)
    mean_sojourn_s: tuple[float, ...] = Field(min_length=2)
    duration_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _matching(self) -> MMPPWorkload:
        if len(self.rates_per_s) != len(self.mean_sojourn_s):
            raise ValueError("rates_per_s and mean_sojourn_s need one value per state")
        if min(self.rates_per_s) < 0 or max(self.rates_per_s) <= 0:
            raise ValueError("rates must be >= 0 and not all 0")
        if min(self.mean_sojourn_s) <= 0:
            raise ValueError("mean_sojourn_s must be > 0")
        return self

    @property
    def mean_rate_per_s(self) -> float:
        """Long-run arrival rate."""
        pairs = zip(self.rates_per_s, self.mean_sojourn_s, strict=True)
        return sum(r * s for r, s in pairs) / sum(self.mean_sojourn_s)

    def arrival_times(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        t = 0.0
        state = 0
        while t < self.duration_s:
            end = min(t + rng.exponential(self.mean_sojourn_s[state]), self.duration_s)
            rate = self.rates_per_s[state]
            if rate > 0:
                # Given their number, Poisson arrivals in [t, end) are uniform order statistics.
                n = rng.poisson(rate * (end - t))
                if n:
                    yield np.sort(rng.uniform(t, end, n))
            t = end
            state = (state + 1) % len(self.rates_per_s)


class DailyWorkload(WorkloadBase):
    """Poisson arrivals whose rate follows a daily cosine:
    rate(t) = mean_rate * (1 + amplitude * cos(2 pi (t - peak_s) / period_s))."""

    kind: Literal["daily"] = "daily"
    mean_rate_per_s: float = Field(gt=0)
    amplitude: float = Field(default=0.5, ge=0, le=1)
    period_s: float = Field(default=86_400.0, gt=0)
    peak_s: float = Field(default=50_400.0)
    """Time of the daily peak (default 14:00 when t=0 is midnight)."""
    duration_s: float = Field(gt=0)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        phase = 2.0 * math.pi * (t - self.peak_s) / self.period_s
        return self.mean_rate_per_s * (1.0 + self.amplitude * np.cos(phase))

    def arrival_times(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        # Thinning (Lewis-Shedler): candidates at the peak rate, each kept with rate(t)/peak.
        peak = self.mean_rate_per_s * (1.0 + self.amplitude)
        t = 0.0
        while True:
            times = t + np.cumsum(rng.exponential(1.0 / peak, _CHUNK))
            keep_prob = self.rate_at(times) / peak
            accepted = times[(rng.random(_CHUNK) < keep_prob) & (times < self.duration_s)]
            if accepted.size:
                yield accepted
            if times[-1] >= self.duration_s:
                return
            t = float(times[-1])


class TraceWorkload(WorkloadBase):
    """Replay of a CSV trace: column arrival_s (seconds) and, optionally, count, tenant and
    memory_mb. Without a count column, sizes come from `size`."""

    kind: Literal["trace"] = "trace"
    path: Path
    time_scale: float = Field(default=1.0, gt=0)
    """Multiply trace times by this (below 1 replays faster)."""

    @model_validator(mode="after")
    def _readable(self) -> TraceWorkload:
        """A bad trace is the scenario's mistake, reported when it is loaded, not mid-run."""
        self._table()
        return self

    def _table(self) -> pd.DataFrame:
        import pandas as pd  # only traces need it; keeps the engine's imports light

        try:
            table = pd.read_csv(self.path)
        except FileNotFoundError:
            raise ValueError(f"trace file not found: {self.path}") from None
        except (OSError, ValueError) as exc:  # not text, no header, broken quoting
            raise ValueError(f"{self.path}: not a CSV trace ({str(exc).splitlines()[0]})"
                             ) from None
        if "arrival_s" not in table.columns:
            raise ValueError(f"{self.path}: needs an arrival_s column; has {list(table.columns)}")
        if table.empty:
            raise ValueError(f"{self.path}: has no requests; add rows of arrival_s")
        times = pd.to_numeric(table["arrival_s"], errors="coerce").to_numpy(dtype=float)
        if not (np.isfinite(times).all() and times[0] >= 0 and (np.diff(times) >= 0).all()):
            raise ValueError(f"{self.path}: arrival_s must be finite numbers >= 0, "
                             "nondecreasing")
        if "count" in table.columns:
            counts = pd.to_numeric(table["count"], errors="coerce").to_numpy(dtype=float)
            if not (np.isfinite(counts).all() and (counts >= 1).all()
                    and (counts == np.round(counts)).all()):
                raise ValueError(f"{self.path}: count must be whole numbers >= 1")
        return table

    def arrival_times(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        yield self._table()["arrival_s"].to_numpy(dtype=float) * self.time_scale

    def requests(self, replication: int, seed: int) -> Iterator[Request]:
        table = self._table()
        if self.max_requests is not None:
            table = table.head(self.max_requests)
        n = len(table)
        times = table["arrival_s"].to_numpy(dtype=float) * self.time_scale
        # Columns the trace lacks are drawn from their own streams, as for generated workloads.
        if "count" in table.columns:
            counts = table["count"].to_numpy(dtype=np.int64)
        else:
            counts = self.size.draw(n, stream_rng(Stream.SIZES, replication, seed))
        if "tenant" in table.columns:
            tenants = [str(x) for x in table["tenant"].tolist()]
        else:
            who = stream_rng(Stream.TENANTS, replication, seed).integers(0, self.tenants, n)
            tenants = [f"t{x}" for x in who.tolist()] if self.tenants > 1 else ["t0"] * n
        if "memory_mb" in table.columns:
            memory = [int(x) for x in table["memory_mb"].tolist()]
        else:
            memory = [self.memory_mb] * n
        works = stream_rng(Stream.WORK_SCALE, replication, seed)
        for i in range(n):
            count = int(counts[i])
            scale = tuple(self.work.draw(count, works).tolist()) if self.work else None
            yield Request.model_construct(
                request_id=i, tenant=tenants[i], count=count, memory_mb=memory[i],
                arrival_s=float(times[i]), lifetime_s=self.lifetime_s, work_scale=scale,
            )


Workload = Annotated[
    PoissonWorkload | MMPPWorkload | DailyWorkload | TraceWorkload, Field(discriminator="kind")
]
"""Any workload; validate one from a dict with pydantic.TypeAdapter(Workload)."""
