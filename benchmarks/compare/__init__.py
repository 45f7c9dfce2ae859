"""Side-by-side performance comparison of dezero_xp with DeZero, PyTorch and a NumPy floor.

``python -m benchmarks.compare --help``. Each implementation runs in its own process (and its
own interpreter, when given), computes the same arithmetic from the same seeded inputs, and
reports timings together with checksums that the driver compares before trusting a timing.
This package file only documents; it imports nothing, so every interpreter can load the
package whatever it has installed.
"""
