"""The discrete-event engine: SimPy drives request arrivals, policy timers and sampling, while
each node runs its own event heap (NodeState) and wakes through exactly one agenda entry.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush, heappushpop
from typing import Any

from simpy.events import Event

from sim.engine.cluster import Cluster
from sim.engine.environment import PlatformEnvironment
from sim.engine.flight import RequestState
from sim.engine.node import EngineNode
from sim.engine.records import (
    Columns,
    InstanceRecord,
    MemorySink,
    NodeSample,
    NodeSummary,
    RecordSink,
    RequestRecord,
)
from sim.engine.request import Request
from sim.policies.protocol import NodeView, Policy
from sim.streams import Stream, stream_rng

SimTime = float

# Launch times this much before `now` (relative) are float noise from a policy's arithmetic.
_PAST_TOLERANCE = 1e-9


@dataclass
class SimResult:
    """Outcome of one run. With a streaming sink the record lists stay empty."""

    policy: str
    replication: int
    seed: int
    end_s: float
    """Simulation time when the run stopped."""
    launches: int
    node_events: int
    """Node wake-ups processed (each may cover several simultaneous internal events)."""
    peak_in_flight: int
    """Most instances launched (or planned) and not yet ready at once, cluster-wide."""
    requests: list[RequestRecord] = field(default_factory=list)
    instances: list[InstanceRecord] = field(default_factory=list)
    node_samples: list[NodeSample] = field(default_factory=list)
    nodes: list[NodeSummary] = field(default_factory=list)


class Simulation:
    """One run of a policy on a cluster under a workload; also the PlatformView policies get."""

    def __init__(
        self,
        cluster: Cluster,
        policy: Policy,
        *,
        replication: int = 0,
        seed: int = 0,
        sample_period_s: float | None = None,
        sink: RecordSink | None = None,
    ) -> None:
        if sample_period_s is not None and not sample_period_s > 0:
            raise ValueError(f"sample_period_s must be > 0, got {sample_period_s}")
        self.policy = policy
        self.replication = replication
        self.seed = seed
        self.env = env = PlatformEnvironment(self._run_agenda)
        self._set_now = env.clock_setter()
        self._nodes = [EngineNode(i, m, lambda: env.now, lambda: self.waking)
                       for i, m in enumerate(cluster.node_models())]
        self.waking: int | None = None
        """The node whose wake-up is being processed (its ready callbacks run), else None."""
        self._agenda = self.env.agenda
        self._compact_at = 2 * len(self._nodes) + 64
        self._work_rng = stream_rng(Stream.WORK, replication, seed)
        self._sink = sink if sink is not None else MemorySink()
        buffers: dict[str, Columns] = self._sink.open(policy.name, replication)
        self._instance_rows = buffers["instances"]
        self._request_rows = buffers["requests"]
        self._sample_rows = buffers["node_samples"]
        self._node_rows = buffers["nodes"]
        self._requests: dict[int, RequestState] = {}
        """Requests that arrived and are not yet all ready."""
        self._in_flight = 0
        """Instances launched (or planned) and not yet ready, cluster-wide."""
        self._next_instance = 0
        """Instances launched so far."""
        self._pending_timers = 0
        self._arrivals_done = False
        self._ready_request: Request | None = None
        self._sample_period = sample_period_s
        self._last_sample_s = 0.0
        self._last_event_s = 0.0
        """Time of the last event other than the sampler's: where a run that was not cut by
        until_s ends (the sampler's next tick must not stretch the run)."""
        self.node_events = 0
        self.peak_in_flight = 0
        """Most instances launched (or planned) and not yet ready at once, cluster-wide."""

    # --- PlatformView -------------------------------------------------------------------------

    @property
    def now(self) -> SimTime:
        return self.env.now

    @property
    def nodes(self) -> Sequence[NodeView]:
        return self._nodes

    @property
    def ready_request(self) -> Request | None:
        return self._ready_request

    def launch(
        self, node: int, request: Request, instances: Sequence[int], at: Sequence[float]
    ) -> None:
        now = self.env.now
        target = self._nodes[node]
        try:
            st = self._requests[request.request_id]
        except KeyError:
            raise ValueError(f"request {request.request_id} is not waiting for launches") from None
        n = len(instances)
        if len(at) != n:
            raise ValueError(f"{n} instances but {len(at)} launch times")
        if st.launched + n > request.count:
            raise ValueError(
                f"request {request.request_id} has {request.count} instances; "
                f"{st.launched + n} launched"
            )
        if n == 0:
            return
        earliest = now - _PAST_TOLERANCE * max(1.0, now)
        if min(at) < earliest:
            raise ValueError(f"launch time {min(at)} is in the past (now {now})")
        if min(instances) < 0 or max(instances) >= request.count:
            raise ValueError(f"instance indices must be in 0..{request.count - 1}")
        st.mark_launched(instances)
        target.launch(now, st, instances, at)
        self._next_instance += n
        self._in_flight += n
        if self._in_flight > self.peak_in_flight:
            self.peak_in_flight = self._in_flight
        st.launched += n
        st.nodes.add(node)
        self._reschedule(target)

    def wake_me(self, at: float, token: object) -> None:
        now = self.env.now
        if at < now:
            raise ValueError(f"wake-up time {at} is in the past (now {now})")
        self.env.succeed_at(at, token).callbacks.append(self._timer)
        self._pending_timers += 1

    # --- engine -------------------------------------------------------------------------------

    def _timer(self, event: Event) -> None:
        self._pending_timers -= 1
        self._last_event_s = self.env.now
        self.policy.on_wakeup(self, event.value)

    def _reschedule(self, node: EngineNode) -> None:
        t = node.state.next_event()
        # A later next event keeps the earlier entry: waking early just reschedules.
        if t < node.wake_at:
            if node.wake_at != math.inf and len(self._agenda) >= self._compact_at:
                self._compact()
            node.generation += 1
            node.wake_at = t
            heappush(self._agenda, (t, node.id, node.generation))

    def _compact(self) -> None:
        nodes = self._nodes
        live = [e for e in self._agenda if e[2] == nodes[e[1]].generation]
        heapify(live)
        self._agenda[:] = live

    def _run_agenda(self) -> None:
        """Wake nodes in agenda order as long as their entries come no later than SimPy's next
        event (at equal times nodes first). The engine's hottest loop: everything inlined."""
        env = self.env
        agenda = self._agenda
        queue = env.event_queue
        if not agenda or (queue and agenda[0][0] > queue[0][0]):
            return
        nodes = self._nodes
        policy = self.policy
        on_ready = policy.on_instance_ready
        (col_request, col_index, col_node, col_planned, col_launch, col_ready,
         col_latency) = (c.append for c in self._instance_rows.columns)
        inf = math.inf
        events = self.node_events
        set_now = self._set_now
        entry = heappop(agenda)
        try:
            while True:
                now, node_id, generation = entry
                set_now(now)
                node = nodes[node_id]
                if generation == node.generation:
                    node.wake_at = inf
                    events += 1
                    if not events & 0xFFFF:
                        self._sink.poll()
                        if not events & 0xFFFFF:
                            gc.collect(0)
                    state = node.state
                    ready = state.advance(now)
                    if ready:
                        self.waking = node_id
                        for st, index, planned_at, launched_at in ready:
                            self._in_flight -= 1
                            latency = now - st.arrival
                            col_request(st.request_id)
                            col_index(index)
                            col_node(node_id)
                            col_planned(planned_at)
                            col_launch(launched_at)
                            col_ready(now)
                            col_latency(latency)
                            st.latency_sum += latency
                            st.ready += 1
                            if st.ready == 1:
                                st.first_ready = now
                            if st.ready <= st.p10_need:
                                st.early.append(now)
                            if st.ready == st.count:
                                self._finish(st, now)
                            self._ready_request = st.request
                            on_ready(self, node_id, index)
                        self._ready_request = None
                        self.waking = None
                    t = state.next_event()
                    if t < node.wake_at:  # (as _reschedule)
                        if node.wake_at != inf and len(agenda) >= self._compact_at:
                            self._compact()
                        node.generation += 1
                        node.wake_at = t
                        # Push and pop the next entry in one: often the same sift, and when
                        # this node comes next again the agenda is not touched at all.
                        entry = heappushpop(agenda, (t, node_id, node.generation))
                    elif agenda:
                        entry = heappop(agenda)
                    else:
                        return
                elif agenda:  # (a superseded entry)
                    entry = heappop(agenda)
                else:
                    return
                if queue and entry[0] > queue[0][0]:
                    heappush(agenda, entry)  # (SimPy's event comes first)
                    return
        finally:
            self.node_events = events
            self._last_event_s = env.now

    def _finish(self, st: RequestState, end: SimTime) -> None:
        del self._requests[st.request_id]
        self._request_rows.append(st.record(end))

    def _on_request(self, request: Request) -> None:
        self._sink.poll()
        self._last_event_s = self.env.now
        if request.request_id in self._requests:
            raise ValueError(f"request id {request.request_id} is used twice")
        z = None
        if request.work_scale is None:
            z = self._work_rng.standard_normal(request.count).tolist()
        self._requests[request.request_id] = RequestState(request, z)
        self.policy.on_request(self, request)

    def _arrivals(self, requests: Iterable[Request]) -> Generator[Event, Any, None]:
        env = self.env
        for request in requests:
            at = request.arrival_s
            if at < env.now:
                raise ValueError(
                    f"requests must come in arrival order: request {request.request_id} "
                    f"arrives at {at} < {env.now}"
                )
            if at > env.now:
                yield env.succeed_at(at)
            self._on_request(request)
        self._arrivals_done = True

    def _busy(self) -> bool:
        return not self._arrivals_done or self._in_flight > 0 or self._pending_timers > 0

    def _sampler(self, period: float) -> Generator[Event, Any, None]:
        env = self.env
        k = 0
        while True:
            # A tick after the run went idle is not sampled: run() samples the run's end.
            if k > 0 and not self._busy():
                return
            self._sample(env.now, period)
            k += 1
            yield env.succeed_at(k * period)

    def _sample(self, now: SimTime, period: float) -> None:
        self._sink.poll()
        rows = self._sample_rows
        for node in self._nodes:
            state = node.state
            state.observe(now)
            busy = state.cpu_busy_s(now)
            fraction = (busy - node.cpu_mark) / (period * node.model.boot_cores) if now > 0 else 0.0
            node.cpu_mark = busy
            rows.append((node.id, now, state.in_flight, state.ready, state.planned, fraction))
        self._last_sample_s = now

    def run(self, requests: Iterable[Request], until_s: float | None = None) -> SimResult:
        """Simulate until every launched instance is ready and nothing is pending (or until_s)."""
        env = self.env
        env.process(self._arrivals(requests))
        if self._sample_period is not None:
            env.process(self._sampler(self._sample_period))
        # The engine's per-event garbage is acyclic (freed by reference counting), but the
        # automatic collector keeps re-traversing the many live in-flight objects: about 15% of
        # the run. Collect the young generation every 2^20 node events instead (see
        # _run_agenda), so cyclic garbage a policy may make is still reclaimed. Every 2^16 cost
        # 6 % of a 1e6-launch run with the same peak memory: there is no cyclic garbage to
        # reclaim on the engine's own path.
        collecting = gc.isenabled()
        gc.disable()
        try:
            env.run(until=until_s)
        finally:
            if collecting:
                gc.enable()
        # A run cut by until_s ends there; otherwise at its last event, wherever the sampler's
        # next tick (which only observes) would have taken the clock.
        end = env.now if until_s is not None else self._last_event_s
        if self._sample_period is not None and end > self._last_sample_s:
            # The last period is cut at the run's end: its busy fraction is over that span.
            self._sample(end, end - self._last_sample_s)
        for st in list(self._requests.values()):
            self._finish(st, end)
        for node in self._nodes:
            node.state.observe(end)
            busy = node.state.cpu_busy_s(end)
            fraction = busy / (end * node.model.boot_cores) if end > 0 else 0.0
            # Launches planned for after the end never started: not counted.
            started = node.launches - node.state.planned
            self._node_rows.append((node.id, started, node.state.peak_in_flight, busy, fraction))
        self._sink.close()
        result = SimResult(
            policy=self.policy.name, replication=self.replication, seed=self.seed, end_s=end,
            launches=self._next_instance, node_events=self.node_events,
            peak_in_flight=self.peak_in_flight,
        )
        if isinstance(self._sink, MemorySink):
            result.requests = self._sink.records(RequestRecord)
            result.instances = self._sink.records(InstanceRecord)
            result.node_samples = self._sink.records(NodeSample)
            result.nodes = self._sink.records(NodeSummary)
        return result


def simulate(
    cluster: Cluster,
    requests: Iterable[Request],
    policy: Policy,
    *,
    replication: int = 0,
    seed: int = 0,
    sample_period_s: float | None = None,
    until_s: float | None = None,
    sink: RecordSink | None = None,
) -> SimResult:
    """Run `policy` on `cluster` for the requests (in arrival order; may be a lazy iterator).

    `replication` and `seed` key the engine's own random stream (per-instance work noise), drawn
    per request in arrival order so that every policy gets the same work (common random numbers).
    """
    simulation = Simulation(
        cluster, policy, replication=replication, seed=seed, sample_period_s=sample_period_s,
        sink=sink,
    )
    return simulation.run(requests, until_s=until_s)
