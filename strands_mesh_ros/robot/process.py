"""How the package's processes end: :func:`run_to_exit` and :func:`end_process` (node
executables, the CLI).

Pure Python: imports neither zenoh nor rclpy.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
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


def run_to_exit(main: Callable[[], int | None]) -> NoReturn:
    """Run ``main`` and end the process (:func:`end_process`) with the status it gives: what it
    returns (None: 0); a ``SystemExit``'s code (a code that is not an integer is printed to
    stderr, status 1); 130 on ``KeyboardInterrupt``; 1 on any other exception, whose
    traceback is printed as the interpreter would.
    """
    code = 1
    try:
        code = main() or 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): the message and status 1, as the interpreter does
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - a defect: still shown, as the interpreter would have
        traceback.print_exc()
    finally:
        end_process(code)
