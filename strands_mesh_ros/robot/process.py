"""How the package's processes end: :func:`end_process` (node executables, the CLI).

Pure Python: imports neither zenoh nor rclpy.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def end_process(code: int) -> NoReturn:
    """End the process with status ``code``: flush Python's logging, its standard streams and
    C's ``stdio``, then ``os._exit``, with no interpreter finalisation.

    Only for a program that has already closed what it opened (mesh sessions, nodes, rclpy,
    files): ``atexit`` handlers and object finalisers do not run.

    Why not a normal exit:

    - While CPython finalises, it ends every thread that then asks for the GIL with
      ``pthread_exit``. A thread inside a C++ extension at that moment aborts the whole process
      (status 134) instead. Seen with rclpy 9.1.2's ``EventsExecutor``: a thread still inside
      it at exit printed "terminate called without an active exception" (every time, in
      test_shutdown) and, once in CI, "FATAL: exception not rethrown".
    - Tearing down the interpreter and the Zenoh sessions took 0.1-0.25 s after a CLI
      command's answer was printed (bench/bench_cli.py).
    """
    import ctypes  # here: the CLI imports this module on every call, and needs ctypes only now

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said on it
            pass
    try:
        ctypes.CDLL(None).fflush(None)  # rcutils writes its console lines with C stdio
    except (OSError, AttributeError):
        pass
    os._exit(code)
