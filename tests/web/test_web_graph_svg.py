"""The server-rendered SVG: one styled group per node, layered from START, edges by kind."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from weavegraph import END, START, GraphBuilder
from weavegraph.demo import app as demo
from weavegraph.web import graph_svg

SVG = "{http://www.w3.org/2000/svg}"


async def noop(snapshot: object, ctx: object) -> None:
    return None


def route(snapshot: object) -> str:
    return "done"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def nodes(root: ET.Element) -> dict[str, tuple[float, float]]:
    """data-node -> (x, y) of every named node group."""
    out = {}
    for g in root.iter(f"{SVG}g"):
        name = g.get("data-node")
        if name:
            x, y = re.findall(r"[-\d.]+", g.get("transform", ""))
            out[name] = (float(x), float(y))
    return out


def edges(root: ET.Element) -> list[tuple[str, str, str]]:
    return [
        (p.get("data-from", ""), p.get("data-to", ""), p.get("class", "").split()[-1])
        for p in root.iter(f"{SVG}path")
        if "wg-edge" in p.get("class", "")
    ]


def test_demo_graph_layers_and_classes() -> None:
    root = parse(graph_svg(demo.graph))
    at = nodes(root)
    assert set(at) == {START, END, *demo.graph.nodes}
    y = {name: pos[1] for name, pos in at.items()}
    searches = {y["search_web"], y["search_docs"], y["search_code"]}
    assert len(searches) == 1  # one layer for the fan-out
    assert y[START] < y["plan"] < min(searches)
    assert max(searches) < y["synthesize"] < y["draft"] < y["review"] < y[END]
    xs = sorted(at[name][0] for name in ("search_web", "search_docs", "search_code"))
    assert xs[1] - xs[0] > 80
    assert xs[2] - xs[1] > 80
    kinds = edges(root)
    assert ("review", "draft", "wg-edge-cond") in kinds
    assert ("review", END, "wg-edge-cond") in kinds
    assert ("draft", "review", "wg-edge-edge") in kinds
    into_join = [k for k in kinds if k[2] == "wg-edge-join" and k[1] == ""]
    out_of_join = [k for k in kinds if k[2] == "wg-edge-join" and k[0] == ""]
    assert sorted(src for src, _, _ in into_join) == ["search_code", "search_docs", "search_web"]
    assert out_of_join == [("", "synthesize", "wg-edge-join")]
    joins = [g for g in root.iter(f"{SVG}g") if "wg-join" in g.get("class", "")]
    assert len(joins) == 1
    assert joins[0].find(f"{SVG}circle") is not None
    groups = [g for g in root.iter(f"{SVG}g") if "wg-node" in g.get("class", "")]
    assert len({g.get("id") for g in groups}) == len(groups)  # ids unique


def test_loop_edges_go_up_the_right_side() -> None:
    root = parse(graph_svg(demo.graph))
    at = nodes(root)
    (loop,) = [
        p
        for p in root.iter(f"{SVG}path")
        if p.get("data-from") == "review" and p.get("data-to") == "draft"
    ]
    numbers = [float(n) for n in re.findall(r"[-\d.]+", loop.get("d", ""))]
    bend_x = numbers[2]
    assert bend_x > at["review"][0]
    assert bend_x > at["draft"][0]
    assert "stroke-dasharray" in graph_svg(demo.graph)  # conditional edges are dashed
    assert loop.get("marker-end") == "url(#wg-arrow)"


def test_names_are_escaped_and_undeclared_routes_drawn() -> None:
    name = 'say <"hi"> & go'
    b = GraphBuilder().add_node(name, noop, destinations=["other"]).add_node("other", noop)
    b.add_edge(START, name).add_edge("other", END)
    b.add_conditional_edges(name, route)
    svg = graph_svg(b.compile().graph)
    root = parse(svg)  # well-formed despite the name
    assert name in nodes(root)
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert name in labels
    assert "route?" in labels
    assert (name, "other", "wg-edge-goto") in edges(root)
    assert any(g.get("class") == "wg-node wg-route" for g in root.iter(f"{SVG}g"))


def test_a_single_node_graph() -> None:
    b = GraphBuilder().add_node("only", noop).add_edge(START, "only").add_edge("only", END)
    root = parse(graph_svg(b.compile().graph))
    at = nodes(root)
    assert at[START][1] < at["only"][1] < at[END][1]
    assert root.get("viewBox", "").startswith("0 0 ")
