#!/usr/bin/python3.11
"""pyfunc.py as a multi-threaded service: a pool of 4 worker threads, a
ticker and a computing thread (see pyfunc.py, PYFUNC_THREADS)."""
import os
import sys

os.environ.setdefault("PYFUNC_THREADS", "4")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pyfunc  # noqa: E402

if __name__ == "__main__":
    pyfunc.main()
