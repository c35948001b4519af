"""A simulator driving RangeCursor directly (written by the adversarial review of the
paging engine; its findings are the cases in test_paging_review.py).

Server state: rows (id, create_at) with ids growing and create_at non-decreasing with id.
Events between answers: arrivals at the newest end, expiries from the oldest end.
Each request is answered from a version of the rows chosen between its send and its feed
(stale prefetch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from senselink_plus._exceptions import ResponseError
from senselink_plus._models import Order, Record, RecordPage
from senselink_plus._paging import PageRequest, RangeCursor

T0 = datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=9)))
T0S = int(T0.timestamp())
A, D = Order.ASCENDING, Order.DESCENDING
MS = 10**11


def sec(at: int) -> int:
    return at // 1000 if at >= MS else at


def rec(i: int, at: int) -> Record:
    return Record(i, "SN1", f"{i:024x}", at)


def inside(at: int, lo: int, hi: int, compare: str) -> bool:
    if compare == "s":
        return lo <= sec(at) <= hi
    ms = at if at >= MS else at * 1000
    return lo * 1000 <= ms <= hi * 1000


def answer(
    rows, request: PageRequest, order: Order, compare: str, cap=None, extra=0, ignore=None
) -> RecordPage:
    lo, hi = int(request.time_from.timestamp()), int(request.time_to.timestamp())
    sel = [r for r in rows if inside(r.create_at, lo, hi, compare)]
    if order is D:
        sel.reverse()
    size = ignore or (request.size if cap is None else min(request.size, cap))
    chunk = sel[(request.page - 1) * size : request.page * size]
    return RecordPage(request.page, size, len(sel) + extra, tuple(chunk))


def make_windows(n: int, span: int, order: Order):
    w = [
        (T0 + timedelta(seconds=k * span), T0 + timedelta(seconds=(k + 1) * span)) for k in range(n)
    ]
    return w[::-1] if order is D else w


@dataclass
class Result:
    got: list
    must: set
    error: Exception | None
    sent: int
    bound: int
    bound_violation: bool
    trace: list = field(default_factory=list)
    ended: bool = True

    def problems(self, allow_error=False):
        p = []
        if len(self.got) != len(set(self.got)):
            seen, d = set(), []
            for g in self.got:
                if g in seen:
                    d.append(g)
                seen.add(g)
            p.append(f"duplicate {d[:5]}")
        if self.bound_violation:
            p.append("sent > bound")
        if not self.ended:
            p.append("unbounded")
        if self.error is not None and not allow_error:
            p.append(f"ResponseError: {self.error}")
        if self.error is None:
            missed = self.must - set(self.got)
            if missed:
                p.append(f"skip {sorted(missed)[:8]}")
        return p


def run(
    ats,
    order,
    page_size,
    lookahead,
    *,
    windows=1,
    span=10,
    compare="ms",
    cap=None,
    extra=0,
    ignore=None,
    max_items=None,
    events=None,
    stale=None,
    limit=None,
    trace=False,
):
    """events(k, rows, next_id) -> (arrivals list of create_at, expire count): called
    before answering the k-th needed request. stale(k, n_versions_since_send)-> index."""
    rows = [rec(i, at) for i, at in enumerate(ats)]
    if limit is None:
        limit = 5 * len(ats) + 3000
    next_id = len(rows)
    ranges = make_windows(windows, span, order)
    wl = [(int(a.timestamp()), int(b.timestamp())) for a, b in ranges]

    def in_range(r):
        return any(inside(r.create_at, lo, hi, compare) for lo, hi in wl)

    must = {r.record_id for r in rows if in_range(r)}
    cursor = RangeCursor(
        ranges, order=order, page_size=page_size, lookahead=lookahead, max_items=max_items
    )
    versions = [list(rows)]
    sent_at = {}
    got, tr = [], []
    err = None
    bv = False
    k = 0
    ended = False
    for _ in range(limit):
        for r in cursor.sends():
            sent_at[r.seq] = len(versions) - 1
        if cursor.sent > cursor.bound():
            bv = True
        req = cursor.needed()
        if req is None:
            ended = True
            break
        if events is not None:
            arr, exp = events(k, rows, next_id)
            if exp:
                gone = rows[:exp]
                del rows[:exp]
                must -= {r.record_id for r in gone}
            for at in arr:
                rows.append(rec(next_id, at))
                next_id += 1
            if arr or exp:
                versions.append(list(rows))
        v0 = sent_at.pop(req.seq)
        vi = len(versions) - 1 if stale is None else stale(k, v0, len(versions) - 1)
        page = answer(versions[vi], req, order, compare, cap, extra, ignore)
        k += 1  # noqa: SIM113 (answers, not loop turns)
        try:
            step = cursor.feed(req, page)
        except ResponseError as e:
            err = e
            ended = True
            if trace:
                tr.append((req, page, "ERR"))
            break
        if trace:
            tr.append(
                (
                    req,
                    [r.record_id for r in page.records],
                    page.total,
                    [r.record_id for r in step.records],
                    vi,
                )
            )
        got.extend(r.record_id for r in step.records)
        if cursor.sent > cursor.bound():
            bv = True
    if max_items is not None:
        # must: the first max_items of the order
        pass
    return Result(got, must, err, cursor.sent, cursor.bound(), bv, tr, ended)


def check_order(got, order):
    return got == sorted(got, reverse=order is D)


def replay(ats, order, page_size, lookahead, *, ev=(), pick=(), **kw):
    """ev[k] = (list of create_at arriving, expiring count) before the k-th answer;
    pick[k] = how many versions back from the newest to answer from (clamped to the
    version current at send time); both default to none / fresh."""
    ev = list(ev)
    pick = list(pick)

    def events(k, rows, nid):
        if k < len(ev):
            arr, exp = ev[k]
            last = rows[-1].create_at if rows else 0
            out = []
            for at in arr:
                at = max(at, last)
                out.append(at)
                last = at
            return out, exp
        return [], 0

    def stale(k, v0, vn):
        back = pick[k] if k < len(pick) else 0
        return max(v0, vn - back)

    return run(ats, order, page_size, lookahead, events=events, stale=stale, **kw)
