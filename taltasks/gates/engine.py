"""The waiting engine: until every gate of a stage holds together, stably, or a deadline.

Each tick observes every gate and judges it (:class:`GateStatus`):

* **ok** — every check holds right now;
* **held** — for how long, counted from the latest moment any check began to hold. Where
  the operator stamps that moment (Ready ``lastTransitionTime``, Ceph ``lastChanged``) its
  timestamp is used, so a long-healthy cluster passes at once and a pre-gate after a
  post-gate costs nothing; where it does not, from the engine's own continuous
  observation. Any regression the engine sees resets that check's clock, and the window
  never starts before ``ctx.not_before`` (the uncordon, for post gates);
* **fresh samples** — for checks carrying a freshness token (Ceph ``lastChecked``), the
  number of distinct values seen while holding, after ``not_before``;
* **satisfied** — ok, held for the gate's window and enough fresh samples.

Between ticks the engine sleeps until the next of: a change reported by a watch, the
moment a window completes, the earliest deadline, or the poll interval (backing off
while a source is failing). tenacity drives the loop: retry on "not yet", stop at the
deadline, wait computed as above, sleep through the injected clock. Checks marked fatal
stop at once. Every wait reports ``gate.waiting`` (the gate, the condition, the value
last seen) when what it waits for changes, and periodically; ``gate.passed`` or
``gate.failed`` at the end. Failure raises :class:`GateFailed` with the last values.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from taltasks import deadline as deadlines
from taltasks.errors import OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.gates.checks import Check, GateContext, short_error
from taltasks.gates.clock import SYSTEM_CLOCK, Clock
from taltasks.gates.registry import OBSERVERS
from taltasks.gates.sources import KubeSource, ResourceQuery, Sources, TalosSource, Unsubscribe
from taltasks.model.durations import format_duration
from taltasks.model.policy import GateSpec

DEFAULT_HINT = "nothing further was changed; fix the cause, then run the same command again to resume"


@dataclass(frozen=True)
class GateStatus:
    """One gate's verdict at one tick."""

    spec: GateSpec
    checks: tuple[Check, ...]
    ok: bool
    satisfied: bool
    held: float
    samples: int | None = None
    samples_needed: int = 0
    due: float | None = None
    source_error: bool = False

    @property
    def failing(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def fatal(self) -> list[Check]:
        return [c for c in self.checks if c.fatal and not c.ok]

    @property
    def state(self) -> str:
        return "satisfied" if self.satisfied else ("stabilizing" if self.ok else "unmet")

    def explain(self) -> str:
        """What is missing, in one line."""
        if self.failing:
            first = self.failing[0]
            more = f" (+{len(self.failing) - 1} more)" if len(self.failing) > 1 else ""
            return f"{first.subject}: {first.condition} — last seen: {first.observed}{more}"
        if self.held < self.spec.window:
            return f"conditions held {format_duration(self.held)} of the {format_duration(self.spec.window)} window"
        if self.samples is not None and self.samples < self.samples_needed:
            return f"{self.samples} of {self.samples_needed} fresh status samples seen while holding"
        return "satisfied"

    def last_values(self) -> dict[str, str]:
        return {c.key: c.observed for c in self.checks}


@dataclass(frozen=True)
class GateResult:
    spec: GateSpec
    status: GateStatus
    waited: float


class GateFailed(OperationFailed):
    """A gate did not pass by its deadline, or saw something waiting cannot fix."""

    def __init__(
        self, status: GateStatus, ctx: GateContext, *, waited: float, fatal: bool, hint: str | None
    ) -> None:
        spec = status.spec
        where = f"{ctx.stage} gates" + (
            f" of {', '.join(n.hostname for n in ctx.subjects)}" if ctx.subjects else ""
        )
        if fatal:
            c = status.fatal[0]
            message = f"gate {spec.id} stopped the run: {c.subject}: {c.condition} — saw {c.observed}"
        else:
            message = (
                f"gate {spec.id} did not pass within {format_duration(spec.timeout)}: {status.explain()}"
            )
        super().__init__(message, where=where, hint=hint or DEFAULT_HINT)
        self.gate = spec.id
        self.status = status
        self.waited = waited
        self.fatal = fatal
        self.last_values = status.last_values()


@dataclass
class _History:
    """What the engine itself has seen of one check, across waits."""

    run_start: float | None = None  # first ok observation of the current unbroken run
    broken: bool = False  # a failure of this check was seen (so operator 'since' is not trusted alone)
    last_seen: float = -math.inf
    samples: list[float] = field(default_factory=list)


class GateEngine:
    """Evaluates and waits on gates against the given sources.

    ``poll_interval``: seconds between observations when no watch is available;
    ``resync_interval``: the same when watches deliver changes (a safety net for timers
    such as staleness); ``continuity``: how long a gap between two observations of the
    same check may be for the engine to count them as one continuous observation (this
    lets a pre-gate that follows a post-gate reuse what the post-gate saw);
    ``report_every``: seconds between repeated ``gate.waiting`` events when nothing changes.
    """

    def __init__(
        self,
        kube: KubeSource | None = None,
        talos: TalosSource | None = None,
        *,
        emitter: Emitter = NULL,
        clock: Clock = SYSTEM_CLOCK,
        poll_interval: float = 2.0,
        resync_interval: float = 10.0,
        continuity: float = 30.0,
        report_every: float = 15.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.sources = Sources(kube, talos)
        self.emitter = emitter
        self.clock = clock
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        # a gap no longer than a few of our own sleeps is still continuous observation
        self.continuity = max(continuity, 2 * max(poll_interval, resync_interval, max_backoff))
        self.report_every = report_every
        self.max_backoff = max_backoff
        self._history: dict[tuple[str, str], _History] = {}
        self.ticks = 0

    # ---- one look ------------------------------------------------------------------------

    def observe(self, spec: GateSpec, ctx: GateContext) -> list[Check]:
        """The checks of ``spec`` right now; an observer error becomes a failed check."""
        try:
            return OBSERVERS[spec.kind].observe(spec, self.sources, ctx, self.clock.time())
        except Exception as exc:
            return [Check(spec.id, "observe", "the gate's sources answer", False, short_error(exc))]

    def evaluate(self, spec: GateSpec, ctx: GateContext) -> GateStatus:
        """Observe ``spec`` once and judge it, updating the engine's own history."""
        now = self.clock.time()
        checks = self.observe(spec, ctx)
        source_error = any(c.name in ("observe", "reachable") for c in checks if not c.ok)
        scope = _fingerprint(spec)
        floor = ctx.not_before if ctx.not_before is not None else -math.inf
        ok = all(c.ok for c in checks)
        starts: list[float] = []
        sampled: list[_History] = []
        for c in checks:
            h = self._history.setdefault((scope, c.key), _History())
            if now - h.last_seen > self.continuity:
                h.run_start, h.broken, h.samples = None, False, []
            h.last_seen = now
            if not c.ok:
                h.run_start, h.broken, h.samples = None, True, []
                continue
            if h.run_start is None:
                h.run_start = now
            if c.since is None or h.broken:
                starts.append(max(c.since if c.since is not None else -math.inf, h.run_start))
            else:
                starts.append(c.since)
            if c.sample is not None:
                if c.sample not in h.samples:
                    h.samples.append(c.sample)
                sampled.append(h)
        if not ok:
            return GateStatus(spec, tuple(checks), False, False, 0.0, source_error=source_error)
        stable_since = max([floor, *starts])
        held = now - stable_since if stable_since > -math.inf else math.inf
        # fresh samples count only inside the stretch the conditions have held
        needed = int(spec.get("freshSamples", 0) or 0) if sampled else 0
        samples = min(sum(1 for s in h.samples if s >= stable_since) for h in sampled) if sampled else None
        enough = samples is None or samples >= needed
        due = stable_since + spec.window - now if held < spec.window else None
        satisfied = held >= spec.window and enough
        return GateStatus(spec, tuple(checks), True, satisfied, held, samples, needed, due)

    def check(self, specs: Sequence[GateSpec], ctx: GateContext) -> list[GateStatus]:
        """Every gate once, without waiting (for status commands and dry runs)."""
        return [self.evaluate(s, ctx) for s in specs]

    def baseline(self, specs: Sequence[GateSpec], ctx: GateContext) -> dict[str, Any]:
        """What the gates remember from before a node (Ceph codes, CNPG timelines), by gate id."""
        out: dict[str, Any] = {}
        for spec in specs:
            take = getattr(OBSERVERS[spec.kind], "baseline", None)
            if take is not None:
                try:
                    out[spec.id] = take(spec, self.sources, ctx)
                except Exception:
                    out[spec.id] = {}
        return out

    # ---- waiting -------------------------------------------------------------------------

    def wait(
        self, specs: Sequence[GateSpec], ctx: GateContext, *, hint: str | None = None
    ) -> list[GateResult]:
        """Block until every gate in ``specs`` is satisfied in the same tick; raise
        :class:`GateFailed` at the first deadline or fatal observation."""
        import tenacity

        if not specs:
            return []
        run = _Wait(self, list(specs), ctx)
        unsubscribe, run.watching = self._subscribe(run)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda statuses: statuses is None),
            stop=lambda _state: run.expired(),
            wait=lambda _state: run.next_wait(),
            sleep=lambda seconds: self.clock.sleep(seconds, run.wake),
            reraise=True,
        )
        try:
            statuses = retrying(run.tick)
        except tenacity.RetryError:
            raise run.failure(hint, fatal=False) from None
        finally:
            for undo in unsubscribe:
                undo()
        waited = self.clock.monotonic() - run.started
        results = []
        for status in statuses:
            extra = f" after {format_duration(waited)}" if waited >= 0.05 else ""
            self.emitter.emit(
                "gate.passed",
                f"{status.spec.id}: passed{extra}",
                node=run.node_name,
                gate=status.spec.id,
                stage=ctx.stage,
                waited=round(waited, 3),
                held=None if math.isinf(status.held) else round(status.held, 3),
            )
            results.append(GateResult(status.spec, status, waited))
        return results

    def _subscribe(self, run: _Wait) -> tuple[list[Unsubscribe], bool]:
        """Subscribe ``run.wake`` to every source the gates read; the flag says whether
        all of them stream (otherwise the engine keeps polling at ``poll_interval``)."""
        queries: list[ResourceQuery] = []
        nodes: list[str] = []
        for spec in run.specs:
            observer = OBSERVERS[spec.kind]
            if hasattr(observer, "kube_queries"):
                queries += observer.kube_queries(spec, run.ctx)
            if hasattr(observer, "talos_nodes"):
                nodes += observer.talos_nodes(spec, run.ctx)
        wanted = (
            (self.sources.kube, list(dict.fromkeys(queries))),
            (self.sources.talos, list(dict.fromkeys(nodes))),
        )
        undos: list[Unsubscribe] = []
        complete = True
        for source, targets in wanted:
            if source is None or not targets:
                continue
            try:
                undo = source.subscribe(targets, run.wake)
            except Exception:
                undo = None
            if undo is None:
                complete = False
            else:
                undos.append(undo)
        return undos, complete


class _Wait:
    """State of one :meth:`GateEngine.wait` call."""

    def __init__(self, engine: GateEngine, specs: list[GateSpec], ctx: GateContext) -> None:
        self.engine, self.specs, self.ctx = engine, specs, ctx
        self.clock = engine.clock
        self.started = self.clock.monotonic()
        self.deadlines = {s.id: self.started + s.timeout for s in specs}
        self.wake = threading.Event()
        self.watching = False
        self.errors_in_row = 0
        self.last: list[GateStatus] = []
        self.known: dict[str, GateStatus] = {}  # each gate's last observation not cut by the deadline
        self._reported: dict[str, tuple[tuple[Any, ...], float]] = {}
        self.node_name = ctx.node.hostname if ctx.node is not None else None

    def tick(self) -> list[GateStatus] | None:
        self.engine.ticks += 1
        # every observation in this tick ends by the deadline that would fail the wait, so a
        # node that stops answering (calls that never return) cannot carry it past that
        with deadlines.until(self._tick_deadline()):
            self.last = [self.engine.evaluate(s, self.ctx) for s in self.specs]
        for status in self.last:
            if not _only_cut_by_deadline(status):
                self.known[status.spec.id] = status
        self.errors_in_row = self.errors_in_row + 1 if any(s.source_error for s in self.last) else 0
        for status in self.last:
            if status.fatal:
                self._report_failure(status)
                raise GateFailed(status, self.ctx, waited=self.elapsed(), fatal=True, hint=None)
        if all(s.satisfied for s in self.last):
            return self.last
        for status in self.last:
            self._report(status)
        return None

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    def _tick_deadline(self) -> float | None:
        """The earliest deadline of a gate not yet satisfied (every gate's on the first
        tick), in ``time.monotonic()`` terms; None under an injected test clock."""
        from taltasks.gates.clock import SystemClock

        if not isinstance(self.clock, SystemClock):
            return None
        pending = [s.spec.id for s in self.last if not s.satisfied] or [s.id for s in self.specs]
        return min(self.deadlines[i] for i in pending)

    def expired(self) -> bool:
        now = self.clock.monotonic()
        return any(not s.satisfied and now >= self.deadlines[s.spec.id] for s in self.last)

    def next_wait(self) -> float:
        base = self.engine.resync_interval if self.watching else self.engine.poll_interval
        if self.errors_in_row:
            base = min(self.engine.max_backoff, self.engine.poll_interval * 2 ** (self.errors_in_row - 1))
        now = self.clock.monotonic()
        candidates = [base]
        for s in self.last:
            if s.satisfied:
                continue
            candidates.append(self.deadlines[s.spec.id] - now)
            if s.due is not None:
                candidates.append(s.due)
        return max(min(candidates), 0.0)

    def failure(self, hint: str | None, *, fatal: bool) -> GateFailed:
        now = self.clock.monotonic()
        late = [s for s in self.last if not s.satisfied and now >= self.deadlines[s.spec.id]]
        candidates = late or [s for s in self.last if not s.satisfied]
        # reads the deadline cut short say nothing about a gate: judge it by its last full
        # observation, and name a gate that saw a real problem before one that was only cut
        informed = [self.known.get(s.spec.id, s) if _only_cut_by_deadline(s) else s for s in candidates]
        real = [s for s in informed if not s.satisfied and not _only_cut_by_deadline(s)]
        status = (real or candidates)[0]
        self._report_failure(status)
        return GateFailed(status, self.ctx, waited=self.elapsed(), fatal=fatal, hint=hint)

    def _report(self, status: GateStatus) -> None:
        spec = status.spec
        failing = status.failing[0] if status.failing else None
        if failing is not None:
            key: tuple[Any, ...] = ("unmet", failing.key, failing.observed)
            message = (
                f"{spec.id}: waiting for {failing.subject}: {failing.condition} (now: {failing.observed})"
            )
            condition, observed = f"{failing.subject}: {failing.condition}", failing.observed
        elif status.state == "stabilizing":
            key = ("stabilizing", status.samples)
            message = f"{spec.id}: holding — {status.explain()}"
            condition, observed = f"stable for {format_duration(spec.window)}", status.explain()
        else:
            key = ("satisfied",)
            message = f"{spec.id}: satisfied, waiting for the other gates"
            condition, observed = "all conditions", "satisfied"
        now = self.clock.monotonic()
        previous = self._reported.get(spec.id)
        repeat = previous is not None and previous[0] == key
        if repeat and (key == ("satisfied",) or now - previous[1] < self.engine.report_every):  # type: ignore[index]
            return
        self._reported[spec.id] = (key, now)
        self.engine.emitter.emit(
            "gate.waiting",
            message,
            node=self.node_name,
            gate=spec.id,
            stage=self.ctx.stage,
            state=status.state,
            condition=condition,
            observed=observed,
            elapsed=round(self.elapsed(), 3),
        )

    def _report_failure(self, status: GateStatus) -> None:
        failing = status.fatal or status.failing
        first = failing[0] if failing else None
        self.engine.emitter.emit(
            "gate.failed",
            f"{status.spec.id}: {status.explain() if not status.fatal else first.describe()}",  # type: ignore[union-attr]
            node=self.node_name,
            gate=status.spec.id,
            stage=self.ctx.stage,
            condition=f"{first.subject}: {first.condition}" if first else status.explain(),
            observed=first.observed if first else status.explain(),
            last=status.last_values(),
            elapsed=round(self.elapsed(), 3),
        )


def _only_cut_by_deadline(status: GateStatus) -> bool:
    """Every failing check of ``status`` is a read that the wait's deadline cut short."""
    failing = status.failing
    return bool(failing) and all(
        c.name in ("observe", "reachable") and "DEADLINE_EXCEEDED" in c.observed for c in failing
    )


def _fingerprint(spec: GateSpec) -> str:
    """History is shared by gates that judge the same way (same kind and settings), so a
    post gate's observations carry into the next pre gate."""
    return f"{spec.kind}|{sorted((k, repr(v)) for k, v in spec.params.items())}"
