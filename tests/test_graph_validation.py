from __future__ import annotations

import pytest

from weavegraph import (
    END,
    START,
    DeadEndError,
    DuplicateEdgeError,
    DuplicateNodeError,
    EdgeFromEndError,
    GraphBuilder,
    GraphCompileError,
    NoEntryError,
    UnknownNodeError,
    UnreachableNodeError,
)


async def noop(snapshot: object, ctx: object) -> None:
    return None


def builder(*names: str) -> GraphBuilder:
    b = GraphBuilder()
    for name in names:
        b.add_node(name, noop)
    return b


def test_no_entry() -> None:
    with pytest.raises(
        NoEntryError, match=r"no entry: add an edge from START, e.g. add_edge\(START, 'a'\)"
    ):
        builder("a").add_edge("a", END).compile()


def test_unknown_node_with_did_you_mean() -> None:
    b = builder("fetch", "summarize").add_edge(START, "fetch").add_edge("fetch", "summarise")
    with pytest.raises(UnknownNodeError) as info:
        b.add_edge("summarize", END).compile()
    assert str(info.value) == (
        "unknown node 'summarise' in edge 'fetch' -> 'summarise' (did you mean 'summarize'?); "
        "registered nodes: fetch, summarize"
    )


def test_unknown_node_without_close_match() -> None:
    with pytest.raises(
        UnknownNodeError, match=r"unknown node 'zzz' in edge 'zzz' -> 'a'; registered nodes: a$"
    ):
        builder("a").add_edge(START, "a").add_edge("zzz", "a").add_edge("a", END).compile()


def test_duplicate_edge() -> None:
    b = builder("a").add_edge(START, "a").add_edge("a", END).add_edge("a", END)
    with pytest.raises(DuplicateEdgeError, match=r"edge 'a' -> '__end__' is declared twice"):
        b.compile()


def test_duplicate_join() -> None:
    b = builder("a", "b", "c").add_edge(START, "a").add_edge(START, "b")
    b.add_edge(["a", "b"], "c").add_edge(["b", "a"], "c").add_edge("c", END)
    with pytest.raises(DuplicateEdgeError, match=r"join \['b', 'a'\] -> 'c' is declared twice"):
        b.compile()
    b2 = builder("a", "c").add_edge(START, "a").add_edge(["a", "a"], "c").add_edge("c", END)
    with pytest.raises(DuplicateEdgeError, match=r"join \['a', 'a'\] names a source twice"):
        b2.compile()


def test_edge_out_of_end() -> None:
    b = builder("a").add_edge(START, "a").add_edge("a", END).add_edge(END, "a")
    with pytest.raises(EdgeFromEndError, match=r"edge '__end__' -> 'a' leaves END"):
        b.compile()
    b2 = builder("a").add_edge(START, "a").add_edge("a", END)
    b2.add_conditional_edges(END, lambda s: "a")
    with pytest.raises(
        EdgeFromEndError, match=r"conditional edge from '__end__' \(<lambda>\) leaves END"
    ):
        b2.compile()


def test_edge_into_start_and_join_from_start() -> None:
    b = builder("a").add_edge(START, "a").add_edge("a", START)
    with pytest.raises(GraphCompileError, match="enters START"):
        b.compile()
    b2 = builder("a").add_edge(START, "a").add_edge([START, "a"], END)
    with pytest.raises(GraphCompileError, match="a join's sources must be nodes, not '__start__'"):
        b2.compile()


def test_unreachable_node() -> None:
    b = builder("a", "lonely", "other").add_edge(START, "a").add_edge("a", END)
    b.add_edge("lonely", END).add_edge("other", END)
    with pytest.raises(UnreachableNodeError) as info:
        b.compile()
    assert str(info.value) == (
        "no path from START reaches nodes 'lonely', 'other'; add an edge to them or remove them"
    )


def test_dead_end() -> None:
    b = builder("a", "stuck").add_edge(START, "a").add_edge("a", END).add_edge("a", "stuck")
    with pytest.raises(DeadEndError) as info:
        b.compile()
    assert str(info.value) == (
        "no path from node 'stuck' reaches END; "
        "add an edge towards END (e.g. add_edge('stuck', END))"
    )


def test_declared_conditional_target_unknown() -> None:
    def route(snapshot: object) -> str:
        return "b"

    b = builder("a", "b").add_edge(START, "a").add_edge("b", END)
    b.add_conditional_edges("a", route, ["b", "c"])
    with pytest.raises(UnknownNodeError) as info:
        b.compile()
    assert str(info.value) == (
        "unknown node 'c' in conditional edge from 'a' (route), declared target; "
        "registered nodes: a, b"
    )


def test_undeclared_conditional_counts_as_reaching_everything() -> None:
    b = builder("a", "b").add_edge(START, "a").add_edge("b", END)
    b.add_conditional_edges("a", lambda s: "b")
    b.compile()  # 'b' may be reached and 'a' may reach END: nothing to report


def test_join_makes_its_target_reachable() -> None:
    b = builder("a", "b", "c").add_edge(START, "a").add_edge(START, "b")
    b.add_edge(["a", "b"], "c").add_edge("c", END)
    app = b.compile()
    assert [j.key for j in app.graph.joins] == ["a+b->c"]


def test_duplicate_and_reserved_node_names() -> None:
    with pytest.raises(DuplicateNodeError, match="node 'a' is already registered"):
        builder("a").add_node("a", noop)
    with pytest.raises(DuplicateNodeError, match="'__end__' is reserved"):
        GraphBuilder().add_node(END, noop)
    with pytest.raises(DuplicateNodeError, match="non-empty strings"):
        GraphBuilder().add_node("", noop)


def test_bad_node_objects_are_rejected() -> None:
    with pytest.raises(TypeError, match="must be an async function, a function, or an object"):
        GraphBuilder().add_node("x", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout of node 'x' must be positive"):
        GraphBuilder().add_node("x", noop, timeout=0)
    with pytest.raises(
        TypeError, match="predicate of the conditional edge from 'x' must be callable"
    ):
        GraphBuilder().add_conditional_edges("x", "nope")  # type: ignore[arg-type]


def test_goto_destinations_count_for_reachability_and_are_checked() -> None:
    b = builder("a", "b").add_edge(START, "a").add_edge("a", END).add_edge("b", END)
    with pytest.raises(UnreachableNodeError):
        b.compile()
    ok = GraphBuilder().add_node("a", noop, destinations=["b"]).add_node("b", noop)
    ok.add_edge(START, "a").add_edge("a", END).add_edge("b", END).compile()
    bad = GraphBuilder().add_node("a", noop, destinations=["bb"]).add_node("b", noop)
    bad.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(
        UnknownNodeError,
        match=r"unknown node 'bb' in destinations of node 'a' \(did you mean 'b'\?\)",
    ):
        bad.compile()
