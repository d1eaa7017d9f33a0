"""`python -m cramlab ...`: the same command line as the `cramlab` script (cramlab.cli.main), nothing more.

Owns nothing else; every command lives in cramlab.cli.
"""
import sys

from cramlab.cli import main

sys.exit(main())
