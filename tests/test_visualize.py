"""dezero_xp/visualize.py: DOT text of a graph, rendering with Graphviz, the missing-dot error."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import dezero_xp as dz
import dezero_xp.functions as F
from dezero_xp import visualize
from dezero_xp.visualize import GraphvizNotFoundError, get_dot_graph, plot_dot_graph

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz `dot` is not installed (apt install graphviz)"
)
NODE = re.compile(r'^(\d+) \[label="([^"]*)", color=(\w+), style=filled(, shape=box)?\]$')
EDGE = re.compile(r"^(\d+) -> (\d+)$")


def _small_graph(xb=None):
    """y = x0 * x1 + sin(x0), with named inputs and output."""
    make = (lambda a: xb.variable(a)) if xb is not None else (lambda a: dz.Variable(a))
    x0 = make(np.ones((2, 3)))
    x1 = make(np.full((2, 3), 2.0))
    x0.name, x1.name = "x0", "x1"
    y = x0 * x1 + F.sin(x0)
    y.name = "y"
    return x0, x1, y


def _parse(dot_text):
    lines = dot_text.strip().splitlines()
    assert lines[0] == "digraph g {" and lines[-1] == "}"
    nodes, edges = {}, set()
    for line in lines[1:-1]:
        node, edge = NODE.match(line), EDGE.match(line)
        assert node or edge, f"unexpected DOT line {line!r}"
        if node:
            node_id, label, color, box = node.groups()
            assert node_id not in nodes, f"node {node_id} emitted twice"
            nodes[node_id] = (label, color, bool(box))
        else:
            edges.add(edge.groups())
    return nodes, edges


def test_dot_text_has_every_variable_function_and_edge():
    x0, x1, y = _small_graph()
    nodes, edges = _parse(get_dot_graph(y))

    mul, add, sin = y.creator.inputs[0].creator, y.creator, y.creator.inputs[1].creator
    assert nodes[str(id(x0))] == ("x0: (2, 3) float64", "orange", False)
    assert nodes[str(id(x1))] == ("x1: (2, 3) float64", "orange", False)
    assert nodes[str(id(y))] == ("y: (2, 3) float64", "orange", False)
    assert nodes[str(id(mul))] == ("Mul", "lightblue", True)
    assert nodes[str(id(add))] == ("Add", "lightblue", True)
    assert nodes[str(id(sin))] == ("Sin", "lightblue", True)
    assert len(nodes) == 5 + 3  # x0, x1, two intermediates, y; three functions
    t_mul, t_sin = (str(id(v)) for v in add.inputs)
    assert nodes[t_mul] == ("(2, 3) float64", "orange", False)  # unnamed: shape and dtype only
    expected_edges = {
        (str(id(x0)), str(id(mul))),
        (str(id(x1)), str(id(mul))),
        (str(id(mul)), t_mul),
        (str(id(x0)), str(id(sin))),
        (str(id(sin)), t_sin),
        (t_mul, str(id(add))),
        (t_sin, str(id(add))),
        (str(id(add)), str(id(y))),
    }
    assert edges == expected_edges


def test_dot_text_not_verbose_shows_names_only():
    x0, _, y = _small_graph()
    nodes, _ = _parse(get_dot_graph(y, verbose=False))
    assert nodes[str(id(x0))][0] == "x0"
    assert nodes[str(id(y))][0] == "y"
    assert "(2, 3)" not in get_dot_graph(y, verbose=False)


def test_dot_text_of_a_leaf_is_one_node():
    x = dz.Variable(np.array(1.0, dtype=np.float32), name="x")
    nodes, edges = _parse(get_dot_graph(x))
    assert nodes == {str(id(x)): ("x: () float32", "orange", False)} and edges == set()


def test_dot_labels_name_dtype_and_device_on_every_backend(xb):
    x0, _, y = _small_graph(xb)
    nodes, _ = _parse(get_dot_graph(y))
    label = nodes[str(id(x0))][0]
    suffix = "" if xb.name == "numpy" else f" {x0.backend}"
    assert label == f"x0: (2, 3) float64{suffix}"


def test_get_dot_graph_rejects_non_variables():
    with pytest.raises(TypeError, match="expected a Variable"):
        get_dot_graph(np.ones(3))


@needs_dot
def test_plot_renders_a_png_and_writes_the_dot_text(tmp_path):
    *_, y = _small_graph()
    target = tmp_path / "out" / "graph.png"
    result = plot_dot_graph(y, to_file=str(target))
    assert result == str(target)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (tmp_path / "out" / "graph.dot").read_text() == get_dot_graph(y)
    assert sorted(p.name for p in target.parent.iterdir()) == ["graph.dot", "graph.png"]


@needs_dot
def test_plot_failure_keeps_the_existing_file(tmp_path):
    *_, y = _small_graph()
    target = tmp_path / "graph.nosuchformat"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="failed with exit code"):
        plot_dot_graph(y, to_file=str(target))
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.dot", "graph.nosuchformat"]


def test_missing_dot_raises_with_install_help_and_keeps_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no `dot` anywhere on PATH
    *_, y = _small_graph()
    target = tmp_path / "graph.png"
    target.write_bytes(b"previous")
    with pytest.raises(GraphvizNotFoundError) as info:
        plot_dot_graph(y, to_file=str(target))
    message = str(info.value)
    for hint in ("apt install graphviz", "brew install graphviz", "conda install", "graph.dot"):
        assert hint in message
    assert target.read_bytes() == b"previous"
    assert (tmp_path / "graph.dot").read_text() == get_dot_graph(y)


def test_missing_dot_via_which(tmp_path, monkeypatch):
    monkeypatch.setattr(visualize.shutil, "which", lambda name: None)
    *_, y = _small_graph()
    with pytest.raises(GraphvizNotFoundError, match="`dot` program was not found"):
        plot_dot_graph(y, to_file=str(tmp_path / "g.svg"))
    assert not (tmp_path / "g.svg").exists()


def test_plot_to_a_dot_file_needs_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(visualize.shutil, "which", lambda name: None)
    *_, y = _small_graph()
    target = tmp_path / "g.dot"
    assert plot_dot_graph(y, verbose=False, to_file=str(target)) == str(target)
    assert target.read_text() == get_dot_graph(y, verbose=False)


def test_plot_needs_a_file_suffix(tmp_path):
    *_, y = _small_graph()
    with pytest.raises(ValueError, match="suffix"):
        plot_dot_graph(y, to_file=str(tmp_path / "graph"))
