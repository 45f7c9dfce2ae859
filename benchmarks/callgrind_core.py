"""Instructions per op of the ``bench_core`` chain, counted with valgrind's callgrind.

Runs the forward + backward chain of ``bench_core.py`` once and ``RUNS`` times, each in its own
process under ``valgrind --tool=callgrind``, and reports ``(I(RUNS) - I(1)) / ((RUNS - 1) *
N_OPS)``: imports and warm-up cancel out. BLAS threads are pinned to one and hash
randomisation is off (idle BLAS worker threads otherwise spin and add thousands of instructions
per op at random). Needs valgrind on PATH.

``python benchmarks/callgrind_core.py`` (from the repository root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
CHILD = (
    "import sys; sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r});"
    "import bench_core\n"
    "for _ in range({runs}): bench_core.dezero_forward_backward()\n"
)


def instructions(runs: int) -> int:
    """Total instructions of one process that runs the chain ``runs`` times."""
    code = CHILD.format(root=str(REPO_ROOT), bench=str(REPO_ROOT / "benchmarks"), runs=runs)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = dict(os.environ, PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        result = subprocess.run(
            [*command, sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr}")
    return int(match.group(1))


def main() -> None:
    import bench_core  # noqa: PLC0415 - beside this file

    one, many = instructions(1), instructions(RUNS)
    per_op = (many - one) / ((RUNS - 1) * bench_core.N_OPS)
    print(f"instructions per op (fwd+bwd, {bench_core.N_OPS}-op chain): {per_op:,.0f}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
