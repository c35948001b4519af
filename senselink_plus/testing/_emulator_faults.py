"""What the emulator saw (received requests) and what it was told to break (faults)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import attrs

__all__ = ["CHAOS_KINDS", "ROUTES", "Chaos", "Fault", "FaultKind", "FaultPlan", "ReceivedRequest"]

#: Route names accepted by the fault helpers; "*" matches every route.
ROUTES = frozenset({"create", "list", "image", "*"})

FaultKind = Literal["fail", "envelope", "drop", "malformed", "delay"]


def _query_repr(query: Mapping[str, str]) -> str:
    shown = {k: ("***" if k == "sign" else v) for k, v in query.items()}
    return repr(shown)


def redact_body(body: Any) -> Any:
    """A create body with ``image.data`` replaced by its length: snapshots stay out of logs."""
    if isinstance(body, dict) and isinstance(body.get("image"), dict):
        image = dict(body["image"])
        data = image.get("data")
        if isinstance(data, str):
            image["data"] = f"<{len(data)} base64 chars>"
        return {**body, "image": image}
    return body


@attrs.frozen
class ReceivedRequest:
    """One request as the emulator received it, with the verdict of its auth check.

    ``json`` is the decoded body (None for GET or a body that is not JSON) with the
    image's base64 replaced by its length; ``fault`` names the fault that answered it.

    >>> [r.route for r in emu.requests if not r.auth_ok]  # doctest: +SKIP
    ['list']
    """

    method: str
    path: str
    route: str
    query: Mapping[str, str] = attrs.field(repr=_query_repr)
    json: Any
    auth_ok: bool
    received_at: float
    fault: FaultKind | None = None


@attrs.define
class Fault:
    """One injected misbehaviour, consumed by ``remaining`` matching requests."""

    kind: FaultKind
    route: str
    remaining: int
    status: int = 200
    code: int | None = None
    message: str | None = None
    retry_after: str | None = None
    after_processing: bool = False
    seconds: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route is {self.route!r}; expected one of {sorted(ROUTES)}")
        if self.remaining < 1:
            raise ValueError(f"times is {self.remaining}; it must be >= 1")
        if self.seconds < 0:
            raise ValueError(f"seconds is {self.seconds}; it must be >= 0")


class FaultPlan:
    """Queued faults, oldest first; a request takes at most one delay and one other fault."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def take(self, route: str, *, delay: bool) -> Fault | None:
        """Consume one use of the oldest matching fault (a delay, or anything else)."""
        for fault in self._faults:
            if (fault.kind == "delay") == delay and fault.route in (route, "*"):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def __len__(self) -> int:
        return len(self._faults)


#: What `Chaos` picks from, evenly: each is one way the real service can misbehave.
CHAOS_KINDS = (
    "503",
    "503-retry-after",
    "429",
    "drop",
    "drop-after-processing",
    "malformed",
    "envelope-error",
    "delay",
)


class Chaos:
    """Random faults on a share of the requests: the emulator's stress mode.

    Each request is hit with probability ``rate``; the fault is drawn evenly from
    `CHAOS_KINDS` (a delay is drawn from ``delay`` seconds and then answered normally).
    ``counts`` tallies what was injected.
    """

    def __init__(
        self,
        rate: float,
        *,
        seed: int | None = None,
        route: str = "*",
        delay: tuple[float, float] = (0.05, 0.5),
        retry_after: str = "1",
        kinds: tuple[str, ...] = CHAOS_KINDS,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate is {rate}; it must be in [0, 1]")
        if route not in ROUTES:
            raise ValueError(f"route is {route!r}; expected one of {sorted(ROUTES)}")
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds must be a non-empty subset of {CHAOS_KINDS}")
        self.rate = rate
        self.route = route
        self.delay = delay
        self.retry_after = retry_after
        self.kinds = kinds
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()

    def draw(self, route: str) -> Fault | None:
        """A fault for this request, or None (most of the time)."""
        if self.route not in (route, "*") or self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.kinds)
        self.counts[kind] += 1
        if kind == "503":
            return Fault("fail", route, 1, status=503)
        if kind == "503-retry-after":
            return Fault("fail", route, 1, status=503, retry_after=self.retry_after)
        if kind == "429":
            return Fault("fail", route, 1, status=429, retry_after=self.retry_after)
        if kind == "drop":
            return Fault("drop", route, 1)
        if kind == "drop-after-processing":
            return Fault("drop", route, 1, after_processing=True)
        if kind == "malformed":
            return Fault("malformed", route, 1)
        if kind == "envelope-error":
            return Fault("envelope", route, 1, code=self.rng.choice((500, 503, 429)))
        return Fault("delay", route, 1, seconds=self.rng.uniform(*self.delay))
