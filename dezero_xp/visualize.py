"""A computation graph as Graphviz DOT text, and its rendering to an image file.

:func:`get_dot_graph` walks the graph behind a Variable and returns DOT text in DeZero's style
(variables as orange ellipses, functions as light-blue boxes); it needs nothing installed.
:func:`plot_dot_graph` writes that text next to the image and renders it with Graphviz's ``dot``
program, raising :class:`GraphvizNotFoundError` with install instructions when ``dot`` is missing.

May import: the standard library and dezero_xp.core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from typing import Any

from dezero_xp.core import Variable

__all__ = ["GraphvizNotFoundError", "get_dot_graph", "plot_dot_graph"]

_INSTALL_HELP = (
    "install Graphviz so that `dot` is on PATH: `apt install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`"
)


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` program is needed to render a graph and is not on PATH."""


def _dtype_name(dtype: Any) -> str:
    """``float32`` for NumPy's, CuPy's, array-api-strict's and torch's float32 alike."""
    name = getattr(dtype, "name", None)
    return name if isinstance(name, str) else str(dtype).rsplit(".", 1)[-1]


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_var(v: Variable, verbose: bool) -> str:
    label = "" if v.name is None else str(v.name)
    if verbose and v.data is not None:
        if v.name is not None:
            label += ": "
        label += f"{tuple(v.shape)} {_dtype_name(v.dtype)}"
        backend = v.backend
        if backend is not None and backend.name != "numpy":
            label += f" {backend}"  # DeZero's label, plus the device when it is not NumPy's
    return f'{id(v)} [label="{_quote(label)}", color=orange, style=filled]\n'


def _dot_func(f: Any) -> str:
    name = _quote(type(f).__name__)
    lines = [f'{id(f)} [label="{name}", color=lightblue, style=filled, shape=box]']
    lines += [f"{id(x)} -> {id(f)}" for x in f.inputs]
    for ref in f.outputs or ():
        y = ref()
        if y is not None:  # outputs are weak references; a freed output has no node
            lines.append(f"{id(f)} -> {id(y)}")
    return "\n".join(lines) + "\n"


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """DOT text of the graph that produced ``output`` (DeZero's format).

    Each Variable is one orange node labelled with its name and, when ``verbose``, its shape and
    dtype; each Function is one light-blue box; edges follow the data from inputs to outputs.
    """
    if not isinstance(output, Variable):
        raise TypeError(f"get_dot_graph: expected a Variable, got {type(output).__name__}")
    parts = [_dot_var(output, verbose)]
    seen_vars = {id(output)}
    seen_funcs = set()
    pending = []
    if output.creator is not None:
        pending.append(output.creator)
        seen_funcs.add(output.creator)
    while pending:
        f = pending.pop()
        parts.append(_dot_func(f))
        for x in f.inputs:  # type: ignore[union-attr]  # a creator has inputs
            if id(x) not in seen_vars:
                seen_vars.add(id(x))
                parts.append(_dot_var(x, verbose))
            if x.creator is not None and x.creator not in seen_funcs:
                seen_funcs.add(x.creator)
                pending.append(x.creator)
    return "digraph g {\n" + "".join(parts) + "}"


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = "graph.png") -> Any:
    """Render the graph behind ``output`` to ``to_file`` (format from its suffix) with Graphviz.

    The DOT text is also written next to it (``graph.png`` -> ``graph.dot``). ``to_file`` is
    replaced only once rendering succeeded. Returns an IPython image inside IPython/Jupyter and
    the path of ``to_file`` elsewhere. Raises :class:`GraphvizNotFoundError` when ``dot`` is
    not installed.
    """
    to_file = os.fspath(to_file)
    stem, suffix = os.path.splitext(to_file)
    image_format = suffix[1:].lower()
    if not image_format:
        raise ValueError(
            f"plot_dot_graph: cannot tell the image format of {to_file!r}; give a file name with "
            "a suffix such as 'graph.png', 'graph.svg' or 'graph.pdf'"
        )
    dot_text = get_dot_graph(output, verbose)
    directory = os.path.dirname(os.path.abspath(to_file))
    os.makedirs(directory, exist_ok=True)
    dot_file = to_file if image_format == "dot" else stem + ".dot"
    with open(dot_file, "w", encoding="utf-8") as f:
        f.write(dot_text)
    if image_format == "dot":
        return to_file

    dot_program = shutil.which("dot")
    if dot_program is None:
        raise GraphvizNotFoundError(
            f"plot_dot_graph: Graphviz's `dot` program was not found, so {to_file!r} was not "
            f"rendered; {_INSTALL_HELP}. The DOT text was written to {dot_file!r} (render it "
            f"later with `dot {dot_file} -T {image_format} -o {to_file}`)."
        )
    # Render into a temporary file beside the target, so a failure leaves to_file untouched.
    # (dot creates it, so it gets the usual permissions, unlike a mkstemp file.)
    partial = os.path.join(directory, f".{os.path.basename(stem)}-{uuid.uuid4().hex}{suffix}")
    try:
        result = subprocess.run(
            [dot_program, dot_file, "-T", image_format, "-o", partial],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"plot_dot_graph: `dot -T {image_format}` failed with exit code "
                f"{result.returncode}: {result.stderr.strip() or '(no message)'}"
            )
        os.replace(partial, to_file)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return _display(to_file)


def _display(path: str) -> Any:
    """An inline image when running inside IPython/Jupyter, else the path (DeZero returned one)."""
    ipython = sys.modules.get("IPython")
    if ipython is None or getattr(ipython, "get_ipython", lambda: None)() is None:
        return path
    from IPython import display  # noqa: PLC0415 - only inside a running IPython

    return display.Image(filename=path)
