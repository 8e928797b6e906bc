"""The generated dashboards' and alert rules' PromQL, evaluated over one registry snapshot.

No Prometheus needed: a notebook previews what a panel or rule would say about a run it just
made. The snapshot is one instant, so a range is "the whole run": ``increase(x[any])`` is the
counter's value (the registry started empty) and ``rate(x[any])`` that value divided by
``seconds``, the run's length. Only the PromQL the generators write is understood (selectors,
``rate``/``increase``/``histogram_quantile``/``label_replace``, ``sum``/``max``/``min``/
``count``/``avg``/``topk`` by, arithmetic, comparisons, ``and``/``or``/``unless`` with
``on``); anything needing history or scrape state (``predict_linear``, ``absent``, ``up``)
raises :class:`Unsupported`.

Example::

    snap = Snapshot.of(registry, seconds=clock.now())
    evaluate('sum by (persona) (increase(hypertool_llm_requests_total[10m]))', snap)
"""

from __future__ import annotations

import math
import operator
import re
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

Labels = tuple[tuple[str, str], ...]
Vector = dict[Labels, float]
Value = Vector | float


class Unsupported(ValueError):
    """The expression needs what one snapshot does not have (history, scrape targets)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every sample of a registry at one instant, and how long the run behind it took."""

    samples: Mapping[str, Vector]
    seconds: float = 1.0
    variables: Mapping[str, str] = field(default_factory=dict)  # $name -> regex (default .*)
    counters: frozenset[str] = frozenset()  # sample names that only grow (not gauges)

    @classmethod
    def of(cls, registry: CollectorRegistry, seconds: float = 1.0,
           variables: Mapping[str, str] | None = None) -> Snapshot:
        samples: dict[str, Vector] = {}
        counters = set()
        for metric in registry.collect():
            for s in metric.samples:
                if not s.name.endswith("_created"):  # creation times are not values
                    samples.setdefault(s.name, {})[_key(s.labels.items())] = float(s.value)
                    if metric.type in ("counter", "histogram", "summary"):
                        counters.add(s.name)
        return cls(samples, max(seconds, 1e-9), dict(variables or {}), frozenset(counters))


def _key(pairs: Iterable[tuple[str, str]]) -> Labels:
    return tuple(sorted(pairs))


# -- parsing -----------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<num>\d+(?:\.\d+)?(?:e[+-]?\d+)?)|(?P<str>"(?:[^"\\]|\\.)*")
    |(?P<range>\[[^\]]*\])|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<op>=~|!~|!=|==|>=|<=|[-+*/(){},=<>]))""", re.X)
_AGGREGATIONS = {"sum", "max", "min", "count", "avg", "topk"}
_PRECEDENCE = [("or",), ("and", "unless"), ("==", "!=", ">", "<", ">=", "<="), ("+", "-"),
               ("*", "/")]


@dataclass(frozen=True, slots=True)
class Node:
    """``kind``: num | str | sel | call | agg | bin; the rest depends on it."""

    kind: str
    name: str = ""  # metric, function, aggregation or operator
    args: tuple[Node, ...] = ()
    value: float = 0.0
    text: str = ""  # string literal
    matchers: tuple[tuple[str, str, str], ...] = ()
    labels: tuple[str, ...] | None = None  # by (...) / on (...)


def parse(expr: str) -> Node:
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse {expr[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    parser = _Parser(tokens)
    node = parser.expr(0)
    if parser.i != len(tokens):
        raise ValueError(f"unexpected {tokens[parser.i][1]!r}")
    return node


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ValueError("unexpected end of expression")
        token = self.tokens[self.i]
        if expected is not None and token[1] != expected:
            raise ValueError(f"expected {expected!r}, got {token[1]!r}")
        self.i += 1
        return token

    def names(self) -> tuple[str, ...]:
        self.take("(")
        out = []
        while self.peek() != ")":
            out.append(self.take()[1])
            if self.peek() == ",":
                self.take()
        self.take(")")
        return tuple(out)

    def expr(self, level: int) -> Node:
        if level == len(_PRECEDENCE):
            return self.unary()
        node = self.expr(level + 1)
        while self.peek() in _PRECEDENCE[level]:
            op = self.take()[1]
            on = self.names() if self.peek() == "on" and self.take() else None
            node = Node("bin", op, (node, self.expr(level + 1)), labels=on)
        return node

    def unary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return Node("num", value=float(text))
        if kind == "str":
            return Node("str", text=text[1:-1])
        if text == "(":
            node = self.expr(0)
            self.take(")")
            return node
        if text == "-":
            return Node("bin", "*", (Node("num", value=-1.0), self.unary()))
        if kind != "ident":
            raise ValueError(f"unexpected {text!r}")
        if text in _AGGREGATIONS:
            by = self.names() if self.peek() == "by" and self.take() else None
            args = self.args()
            if self.peek() == "by" and self.take():
                by = self.names()
            return Node("agg", text, args, labels=by)
        if self.peek() == "(":
            return Node("call", text, self.args())
        matchers = []
        if self.peek() == "{":
            self.take()
            while self.peek() != "}":
                label, op, value = self.take()[1], self.take()[1], self.take()[1]
                matchers.append((label, op, value[1:-1]))
                if self.peek() == ",":
                    self.take()
            self.take("}")
        ranged = self.i < len(self.tokens) and self.tokens[self.i][0] == "range"
        return Node("sel", text, matchers=tuple(matchers),
                    text=self.take()[1] if ranged else "")

    def args(self) -> tuple[Node, ...]:
        self.take("(")
        out = []
        while self.peek() != ")":
            out.append(self.expr(0))
            if self.peek() == ",":
                self.take()
        self.take(")")
        return tuple(out)


# -- evaluation --------------------------------------------------------------------------------

def evaluate(expr: str | Node, snapshot: Snapshot) -> Value:
    """``expr`` at the snapshot: a vector (labels -> value) or a number. NaN results (a
    quantile of nothing, 0/0) are dropped, as Grafana shows no point for them."""
    node = parse(expr) if isinstance(expr, str) else expr
    value = _eval(node, snapshot)
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not math.isnan(v)}
    return value


def _vector(value: Value, what: str) -> Vector:
    if not isinstance(value, dict):
        raise ValueError(f"{what} needs a vector")
    return value


def _scalar(value: Value, what: str) -> float:
    if isinstance(value, dict):
        raise ValueError(f"{what} needs a number")
    return value


def _select(node: Node, snap: Snapshot) -> Vector:
    out: Vector = {}
    for labels, value in snap.samples.get(node.name, {}).items():
        have = dict(labels)
        if all(_matches(have.get(label, ""), op, _expand(pattern, snap))
               for label, op, pattern in node.matchers):
            out[_key([*labels, ("__name__", node.name)])] = value
    return out


def _expand(pattern: str, snap: Snapshot) -> str:
    # Dashboard variables ($persona...) select everything unless the snapshot pins them.
    return re.sub(r"\$(\w+)", lambda m: snap.variables.get(m.group(1), ".*"), pattern)


def _matches(value: str, op: str, pattern: str) -> bool:
    if op in ("=~", "!~"):
        return (re.fullmatch(pattern, value) is not None) == (op == "=~")
    return (value == pattern) == (op == "=")


def _drop_name(vector: Vector) -> Vector:
    return {tuple(p for p in k if p[0] != "__name__"): v for k, v in vector.items()}


def _eval(node: Node, snap: Snapshot) -> Value:
    if node.kind == "num":
        return node.value
    if node.kind == "sel":
        if node.name == "up":
            raise Unsupported("up: needs Prometheus' scrape of the target")
        return _select(node, snap)
    if node.kind == "agg":
        return _aggregate(node, snap)
    if node.kind == "call":
        return _call(node, snap)
    if node.kind == "bin":
        return _binary(node, snap)
    raise ValueError(f"a {node.kind} is not a value")


_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum, "max": max, "min": min, "count": lambda v: float(len(v)),
    "avg": statistics.fmean}


def _aggregate(node: Node, snap: Snapshot) -> Vector:
    k = int(_scalar(_eval(node.args[0], snap), "topk")) if node.name == "topk" else 0
    vector = _drop_name(_vector(_eval(node.args[-1], snap), node.name))
    if node.name == "topk":
        return dict(sorted(vector.items(), key=lambda kv: -kv[1])[:k])
    groups: dict[Labels, list[float]] = {}
    for labels, value in vector.items():
        key = tuple(p for p in labels if node.labels is None or p[0] in node.labels)
        groups.setdefault(key if node.labels is not None else (), []).append(value)
    return {key: _REDUCE[node.name](values) for key, values in groups.items()}


def _call(node: Node, snap: Snapshot) -> Value:
    name, args = node.name, node.args
    if name in ("rate", "increase"):
        if args[0].kind != "sel" or not args[0].text:
            raise ValueError(f"{name}() needs a range selector")
        vector = _drop_name(_select(args[0], snap))
        return {k: v / snap.seconds for k, v in vector.items()} if name == "rate" else vector
    if name == "histogram_quantile":
        q = _scalar(_eval(args[0], snap), name)
        return _quantiles(q, _vector(_eval(args[1], snap), name))
    if name == "label_replace":
        vector = _vector(_eval(args[0], snap), name)
        dst, repl, src, regex = (a.text for a in args[1:])
        out: Vector = {}
        for labels, value in vector.items():
            have = dict(labels)
            match = re.fullmatch(regex, have.get(src, ""))
            if match:
                have[dst] = match.expand(repl.replace("$", "\\"))
            out[_key((k, v) for k, v in have.items() if v)] = value
        return out
    raise Unsupported(f"{name}(): needs history or scrape state a snapshot does not have")


def _quantiles(q: float, buckets: Vector) -> Vector:
    series: dict[Labels, list[tuple[float, float]]] = {}
    for labels, count in buckets.items():
        rest = tuple(p for p in labels if p[0] not in ("le", "__name__"))
        series.setdefault(rest, []).append((float(dict(labels)["le"]), count))
    return {labels: _bucket_quantile(q, sorted(points)) for labels, points in series.items()}


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    # Prometheus' bucketQuantile: linear interpolation inside the bucket holding the rank.
    if len(buckets) < 2 or buckets[-1][0] != math.inf or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    b = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, end, count = 0.0, buckets[b][0], buckets[b][1]
    if b > 0:
        start, count, rank = buckets[b - 1][0], count - buckets[b - 1][1], rank - buckets[b - 1][1]
    return start + (end - start) * rank / count if count else math.nan


def _divide(a: float, b: float) -> float:
    if b:
        return a / b
    return math.nan if a == 0 else math.copysign(math.inf, a)  # PromQL divides by zero


_ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": _divide}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge,
    "<=": operator.le}


def _binary(node: Node, snap: Snapshot) -> Value:
    op = node.name
    lhs, rhs = (_eval(a, snap) for a in node.args)

    def match(labels: Labels) -> Labels:
        return tuple(p for p in labels if p[0] != "__name__"
                     and (node.labels is None or p[0] in node.labels))

    if op in ("and", "or", "unless"):
        left, right = _vector(lhs, op), _vector(rhs, op)
        keys = {match(k) for k in right}
        if op == "and":
            return {k: v for k, v in left.items() if match(k) in keys}
        if op == "unless":
            return {k: v for k, v in left.items() if match(k) not in keys}
        have = {match(k) for k in left}
        return {**left, **{k: v for k, v in right.items() if match(k) not in have}}
    if not isinstance(lhs, dict) and not isinstance(rhs, dict):
        result = _ARITHMETIC[op](lhs, rhs) if op in _ARITHMETIC else float(_COMPARE[op](lhs, rhs))
        return float(result)
    if op in _COMPARE:  # a filter: keeps the left-hand values that compare true
        if isinstance(lhs, dict) and not isinstance(rhs, dict):
            return {k: v for k, v in lhs.items() if _COMPARE[op](v, rhs)}
        if isinstance(rhs, dict) and not isinstance(lhs, dict):
            return {k: lhs for k, v in rhs.items() if _COMPARE[op](lhs, v)}
        right = {match(k): v for k, v in _vector(rhs, op).items()}
        return {k: v for k, v in _vector(lhs, op).items()
                if match(k) in right and _COMPARE[op](v, right[match(k)])}
    fn = _ARITHMETIC[op]
    if not isinstance(rhs, dict):
        return {k: fn(v, rhs) for k, v in _drop_name(_vector(lhs, op)).items()}
    if not isinstance(lhs, dict):
        return {k: fn(lhs, v) for k, v in _drop_name(rhs).items()}
    right = {match(k): v for k, v in rhs.items()}
    return {match(k) if node.labels else k: fn(v, right[match(k)])
            for k, v in _drop_name(lhs).items() if match(k) in right}
