"""`python -m simulator serve|truth|scenarios ...` (subprocess-friendly; see simulator/launcher.py)."""

import sys

from simulator.launcher import main

if __name__ == "__main__":
    sys.exit(main())
