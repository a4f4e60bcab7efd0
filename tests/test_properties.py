"""Property tests over random DAGs: joins run each node exactly once; plain edges match a model."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import assert_no_tasks_left
from weavegraph import END, START, GraphBuilder, NodeContext, NodePartial, StateSnapshot


@st.composite
def dags(draw: st.DrawFn) -> dict[int, list[int]]:
    """Random DAGs on nodes 0..n-1: predecessors of each node (always smaller numbers)."""
    size = draw(st.integers(min_value=1, max_value=9))
    return {
        node: sorted(draw(st.sets(st.integers(0, node - 1), max_size=3)) if node else [])
        for node in range(size)
    }


def build(preds: dict[int, list[int]], joins: bool, log: list[tuple[int, str]]) -> GraphBuilder:
    b = GraphBuilder()
    for node in preds:

        async def run(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            log.append((ctx.step, ctx.node))
            await asyncio.sleep(0)
            return NodePartial(extra={ctx.node: ctx.step})

        b.add_node(f"n{node}", run)
    has_successor = {p for ps in preds.values() for p in ps}
    for node, ps in preds.items():
        if not ps:
            b.add_edge(START, f"n{node}")
        elif joins and len(ps) > 1:
            b.add_edge([f"n{p}" for p in ps], f"n{node}")
        else:
            for p in ps:
                b.add_edge(f"n{p}", f"n{node}")
        if node not in has_successor:
            b.add_edge(f"n{node}", END)
    return b


def model(preds: dict[int, list[int]]) -> list[tuple[int, str]]:
    """The reference: runs per step for plain edges (each node once per arriving step)."""
    succ: dict[int, list[int]] = {n: [] for n in preds}
    for node, ps in preds.items():
        for p in ps:
            succ[p].append(node)
    frontier = [n for n, ps in preds.items() if not ps]
    runs, step = [], 0
    while frontier:
        step += 1
        runs.extend((step, f"n{n}") for n in frontier)
        frontier = list(dict.fromkeys(s for n in frontier for s in succ[n]))
    return runs


settings_ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(dags())
def test_with_joins_every_node_runs_exactly_once_after_its_predecessors(
    preds: dict[int, list[int]],
) -> None:
    log: list[tuple[int, str]] = []

    async def go() -> None:
        final = await build(preds, True, log).compile().invoke()
        await assert_no_tasks_left()
        assert sorted(final.extra) == sorted(f"n{n}" for n in preds)

    asyncio.run(go())
    names = [name for _, name in log]
    assert sorted(names) == sorted(f"n{n}" for n in preds)
    step_of = {name: step for step, name in log}
    for node, ps in preds.items():
        for p in ps:
            assert step_of[f"n{p}"] < step_of[f"n{node}"]


@settings_
@given(dags())
def test_plain_edges_run_once_per_arriving_step(preds: dict[int, list[int]]) -> None:
    log: list[tuple[int, str]] = []
    asyncio.run(build(preds, False, log).compile().invoke())
    assert sorted(log) == sorted(model(preds))
