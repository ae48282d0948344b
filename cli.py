#!/usr/bin/env python3
"""`python cli.py ...` does exactly what the `livegen` console script does."""

import sys

from livegen.cli import main

if __name__ == "__main__":
    sys.exit(main())
