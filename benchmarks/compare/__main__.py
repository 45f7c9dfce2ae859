"""``python -m benchmarks.compare``: run the comparison driver."""

import sys

from benchmarks.compare.run import main

sys.exit(main())
