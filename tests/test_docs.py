"""Every Python code block of the documentation runs, and every printed number is checked.

Each page under ``docs/`` is one test: its ```` ```python ```` blocks run in order in one
namespace (like a notebook), in a temporary working directory, with pytest's warnings-as-errors
and the random state of a fresh interpreter (``dz.seed(None)``: NumPy's global generator).
A block fails the test by raising, so the pages check their numbers with ``assert``. A block
followed directly by an Output block must print exactly that text::

    ```{code-block} text
    :caption: Output
    variable(2.0)
    ```

A MyST comment on the line before a block changes how it runs (it is not rendered):

- ``% docs-test: requires torch``: a standalone block, run on its own where ``torch``
  imports (skipped otherwise, with the reason, as the suite does for optional backends);
- ``% docs-test: skip REASON``: never run here (a shell session, a multi-process launch,
  a download); the reason is part of the page's source.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import dezero_xp as dz

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
MARKER = re.compile(r"^%\s*docs-test:\s*(?P<what>requires|skip)\s*(?P<arg>.*?)\s*$")
OUTPUT_INFO = re.compile(r"^\{code-block\}\s+text\s*$")
OUTPUT_CAPTION = ":caption: Output"


@dataclass
class Block:
    """One fenced block of a page: its info string, first code line, code and run marker."""

    info: str
    line: int
    code: str
    marker: tuple[str, str] | None
    output: str | None = None  # the expected stdout, for a python block followed by an Output


def _language(info: str) -> str:
    return info.strip().split(maxsplit=1)[0].lower() if info.strip() else ""


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, each python block paired with its Output block."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        marker = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (m := MARKER.match(lines[j])):
            marker = (m["what"], m["arg"])
        body = []
        k = i + 1
        while k < len(lines) and not re.match(
            rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[k]
        ):
            body.append(lines[k][len(indent) :] if lines[k].startswith(indent) else lines[k])
            k += 1
        if k == len(lines):
            raise ValueError(f"unclosed code fence opened on line {i + 1}")
        blocks.append(Block(info, i + 2, "\n".join(body) + "\n", marker))
        i = k + 1
    paired: list[Block] = []
    for block in blocks:
        first, _, rest = block.code.partition("\n")
        is_output = OUTPUT_INFO.match(block.info) and first.strip() == OUTPUT_CAPTION
        if is_output and paired and _language(paired[-1].info) == "python":
            paired[-1].output = rest.lstrip("\n")
        else:
            paired.append(block)
    return paired


def python_blocks(path: Path) -> list[Block]:
    return [
        b
        for b in parse_blocks(path.read_text(encoding="utf-8"))
        if _language(b.info) in ("python", "py")
    ]


def _pages() -> list[Path]:
    return sorted(DOCS_DIR.rglob("*.md")) if DOCS_DIR.is_dir() else []


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _run_block(path: Path, block: Block, namespace: dict) -> None:
    where = f"{path.name}:{block.line}"
    # Padding keeps the page's line numbers in tracebacks.
    code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        exec(code, namespace)
    if block.output is not None:
        got, expected = _normalise(stdout.getvalue()), _normalise(block.output)
        assert got == expected, f"{where}: printed\n{got}\nbut the page shows\n{expected}"


def run_page(path: Path) -> int:
    """Run the page's unmarked python blocks in order in one namespace; returns how many ran."""
    namespace: dict = {"__name__": "__docs__"}
    blocks = [b for b in python_blocks(path) if b.marker is None]
    for block in blocks:
        _run_block(path, block, namespace)
    return len(blocks)


def _marked_blocks() -> list[tuple[Path, Block]]:
    return [(p, b) for p in _pages() for b in python_blocks(p) if b.marker is not None]


def _pages_with_code() -> list[Path]:
    return [p for p in _pages() if any(b.marker is None for b in python_blocks(p))]


@pytest.mark.skipif(not DOCS_DIR.is_dir(), reason="docs/ is not part of this tree")
@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: str(p.relative_to(DOCS_DIR)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dz.seed(None)  # as in a fresh interpreter (the suite's fixture seeds every test)
    assert run_page(page) > 0


@pytest.mark.parametrize(
    ("page", "block"),
    _marked_blocks(),
    ids=lambda v: v.name if isinstance(v, Path) else str(v.line),
)
def test_marked_block(page, block, tmp_path, monkeypatch):
    """A block marked ``requires``: standalone, run where its modules import."""
    what, arg = block.marker
    if what == "skip":
        pytest.skip(f"{page.name}:{block.line}: {arg}")
    for module in arg.split():
        pytest.importorskip(module, reason=f"{page.name}:{block.line} needs {module}")
    monkeypatch.chdir(tmp_path)
    dz.seed(None)
    _run_block(page, block, {"__name__": "__docs__"})


@pytest.mark.skipif(not DOCS_DIR.is_dir(), reason="docs/ is not part of this tree")
def test_the_book_pages_have_checked_examples():
    """Each stage page runs code and checks numbers (asserts or printed Output blocks)."""
    stages = sorted((DOCS_DIR / "book").glob("stage*.md"))
    assert [p.stem for p in stages] == [f"stage{n}" for n in range(1, 6)]
    for page in stages:
        blocks = [b for b in python_blocks(page) if b.marker is None]
        checks = sum(b.code.count("assert ") for b in blocks)
        checks += sum(b.output is not None for b in blocks)
        assert len(blocks) >= 5 and checks >= 5, (page.name, len(blocks), checks)


# ------------------------------------------------------------------ the harness itself


def test_parse_pairs_output_and_reads_markers():
    page = (
        "text\n\n```python\nprint(1 + 1)\n```\n\n"
        "```{code-block} text\n:caption: Output\n2\n```\n\n"
        "% docs-test: skip needs a cluster\n```python\nraise SystemExit\n```\n"
        "```bash\nls\n```\n"
    )
    blocks = parse_blocks(page)
    assert [(_language(b.info), b.line, b.output, b.marker) for b in blocks] == [
        ("python", 4, "2\n", None),
        ("python", 14, None, ("skip", "needs a cluster")),
        ("bash", 17, None, None),
    ]


def test_a_wrong_printed_number_fails(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "```python\nprint(0.1 + 0.2)\n```\n```{code-block} text\n:caption: Output\n0.3\n```\n"
    )
    with pytest.raises(AssertionError, match="0.30000000000000004"):
        run_page(page)


def test_a_failing_assert_names_the_page_line(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("intro\n\n```python\nx = 2\nassert x == 3\n```\n")
    with pytest.raises(AssertionError) as info:
        run_page(page)
    frame = info.traceback[-1]
    assert (Path(frame.path).name, frame.lineno + 1) == ("p.md", 5)


# ------------------------------------------------------------------ docstrings of the API pages

API_DIRECTIVE = re.compile(r"^\.\. auto(?:module|class|function|exception|data):: (\S+)", re.M)
SPHINX_ROLES = ("func", "class", "meth", "attr", "mod", "data", "exc", "obj", "ref", "doc")


def _documented_objects() -> list[tuple[str, object]]:
    """``(name, object)`` for every object an API page renders, and the members autodoc adds."""
    import importlib
    import inspect

    found: dict[str, object] = {}

    def add(name, obj, depth):
        if name in found or depth > 2:
            return
        found[name] = obj
        if inspect.ismodule(obj):
            public = getattr(obj, "__all__", [n for n in vars(obj) if not n.startswith("_")])
            for member in public:
                value = getattr(obj, member, None)
                if inspect.isclass(value) or inspect.isfunction(value):
                    add(f"{name}.{member}", value, depth + 1)
        elif inspect.isclass(obj):
            for member, value in vars(obj).items():
                if not member.startswith("_") and (
                    inspect.isfunction(value) or isinstance(value, property)
                ):
                    add(f"{name}.{member}", value, depth + 1)

    for page in sorted((DOCS_DIR / "api").glob("*.md")):
        for target in API_DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            module_name, _, attr = target, "", None
            try:
                obj = importlib.import_module(target)
            except ImportError:
                module_name, _, attr = target.rpartition(".")
                obj = getattr(importlib.import_module(module_name), attr)
            add(target, obj, 0)
    return sorted(found.items())


@pytest.mark.skipif(not (DOCS_DIR / "api").is_dir(), reason="docs/ is not part of this tree")
def test_api_docstrings_are_valid_restructuredtext():
    """What autodoc renders parses without reST errors, so ``nox -s docs`` (-W) stays green."""
    import inspect

    docutils_core = pytest.importorskip("docutils.core", reason="docutils comes with .[docs]")
    from docutils.parsers.rst import roles

    for role in SPHINX_ROLES:
        roles.register_generic_role(role, __import__("docutils.nodes").nodes.literal)
    problems = []
    for name, obj in _documented_objects():
        doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj)
        if not doc or inspect.getmodule(obj) is None:
            continue
        if not (getattr(inspect.getmodule(obj), "__name__", "") or "").startswith("dezero_xp"):
            continue
        stream = io.StringIO()
        docutils_core.publish_doctree(
            doc,
            settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": stream},
        )
        if stream.getvalue():
            problems.append(f"{name}:\n{stream.getvalue()}")
    assert not problems, "docstrings that do not parse as reST:\n" + "\n".join(problems)


@pytest.mark.skipif(not DOCS_DIR.is_dir(), reason="docs/ is not part of this tree")
def test_every_page_is_in_the_table_of_contents():
    """A page missing from a toctree of docs/index.md fails ``nox -s docs`` (-W); say so here."""
    blocks = parse_blocks((DOCS_DIR / "index.md").read_text("utf-8"))
    listed = {
        line.strip()
        for block in blocks
        if block.info.strip() == "{toctree}"
        for line in block.code.splitlines()
        if line.strip() and not line.startswith(":")
    }
    pages = {str(p.relative_to(DOCS_DIR).with_suffix("")) for p in _pages()} - {"index"}
    assert pages - listed == set(), "add these pages to a toctree in docs/index.md"
