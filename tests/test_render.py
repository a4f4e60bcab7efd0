from __future__ import annotations

from weavegraph import END, START, GraphBuilder


async def noop(snapshot: object, ctx: object) -> None:
    return None


def route(snapshot: object) -> str:
    return "done"


def make_app():  # type: ignore[no-untyped-def]
    b = GraphBuilder()
    for name in ("plan", "left", "right", "merge", "check"):
        b.add_node(name, noop)
    b.add_edge(START, "plan").add_edge("plan", "left").add_edge("plan", "right")
    b.add_edge(["left", "right"], "merge").add_edge("merge", "check")
    b.add_conditional_edges("check", route, {"again": "plan", "done": END})
    return b.compile()


def test_mermaid() -> None:
    assert make_app().to_mermaid() == (
        "flowchart TD\n"
        '    __start__(["START"])\n'
        '    n0["plan"]\n'
        '    n1["left"]\n'
        '    n2["right"]\n'
        '    n3["merge"]\n'
        '    n4["check"]\n'
        '    __end__(["END"])\n'
        "    __start__ --> n0\n"
        "    n0 --> n1\n"
        "    n0 --> n2\n"
        "    n3 --> n4\n"
        '    n4 -.->|"route: again"| n0\n'
        '    n4 -.->|"route: done"| __end__\n'
        '    join0(("join"))\n'
        "    n1 ==> join0\n"
        "    n2 ==> join0\n"
        "    join0 ==> n3\n"
    )


def test_mermaid_undeclared_conditional_and_quotes() -> None:
    b = GraphBuilder().add_node('say "hi"', noop).add_edge(START, 'say "hi"')
    b.add_conditional_edges('say "hi"', route)
    text = b.compile().to_mermaid()
    assert '    n0["say #quot;hi#quot;"]\n' in text
    assert '    n0_route0{{"route?"}}\n    n0 -.-> n0_route0\n' in text


def test_dot() -> None:
    assert make_app().to_dot() == (
        "digraph weavegraph {\n"
        "    rankdir=TB;\n"
        '    "__start__" [label="START", shape=oval];\n'
        '    "plan" [shape=box];\n'
        '    "left" [shape=box];\n'
        '    "right" [shape=box];\n'
        '    "merge" [shape=box];\n'
        '    "check" [shape=box];\n'
        '    "__end__" [label="END", shape=oval];\n'
        '    "__start__" -> "plan";\n'
        '    "plan" -> "left";\n'
        '    "plan" -> "right";\n'
        '    "merge" -> "check";\n'
        '    "check" -> "plan" [style=dashed, label="route: again"];\n'
        '    "check" -> "__end__" [style=dashed, label="route: done"];\n'
        '    "join0" [label="join", shape=circle];\n'
        '    "left" -> "join0" [style=bold];\n'
        '    "right" -> "join0" [style=bold];\n'
        '    "join0" -> "merge" [style=bold];\n'
        "}\n"
    )


def test_dot_undeclared_conditional() -> None:
    b = GraphBuilder().add_node("a", noop).add_edge(START, "a")
    b.add_conditional_edges("a", route)
    text = b.compile().to_dot()
    assert '    "a?0" [label="route?", shape=diamond];\n    "a" -> "a?0" [style=dashed];\n' in text


def test_goto_destinations_are_drawn_dashed() -> None:
    b = GraphBuilder().add_node("a", noop, destinations=["b"]).add_node("b", noop)
    app = b.add_edge(START, "a").add_edge("a", END).add_edge("b", END).compile()
    assert '    n0 -.->|"goto"| n1\n' in app.to_mermaid()
    assert '    "a" -> "b" [style=dashed, label="goto"];\n' in app.to_dot()
