"""A real headless Chromium driven over the DevTools protocol (CDP) on a pipe.

``--remote-debugging-pipe`` gives CDP on file descriptors 3 (to the browser) and 4 (from it),
messages being JSON terminated by NUL: no extra package, no port. Tests wait on page conditions
(``Runtime.evaluate`` polled until true), never on fixed sleeps.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import subprocess
import threading
from concurrent.futures import Future
from typing import Any

from strands_mesh_ros.testing import wait_for

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--remote-debugging-pipe", "--no-first-run",
                 "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                 # WebGL on a machine without a GPU: SwiftShader (software), as ENVIRONMENT.md found
                 "--enable-unsafe-swiftshader", "--use-angle=swiftshader"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page.

    Args:
        width, height: the window in CSS pixels.

    Raises:
        RuntimeError: no chromium on PATH, or it does not answer.
    """

    def __init__(self, width: int = 1200, height: int = 700) -> None:
        exe = chromium_path()
        if exe is None:
            raise RuntimeError("chromium is not installed")
        to_r, to_w = os.pipe()      # we write commands to to_w; the browser reads fd 3
        from_r, from_w = os.pipe()  # the browser writes fd 4; we read from_r
        # the shell moves our pipe ends onto fds 3 and 4, whatever their numbers here
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_r} 4>&{from_w} {to_r}<&- {from_w}>&-',
             exe, *CHROMIUM_ARGS, f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_r, from_w))
        os.close(to_r)
        os.close(from_w)
        self._out = os.fdopen(to_w, "wb", buffering=0)
        self._in = os.fdopen(from_r, "rb", buffering=0)
        self._ids = itertools.count(1)
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self._in.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                fut = self._pending.pop(msg.get("id"), None) if "id" in msg else None
                if fut is not None:
                    fut.set_result(msg)
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(RuntimeError("chromium closed the DevTools pipe"))

    def call(self, method: str, session: bool = False, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one CDP command and return its result.

        Raises:
            RuntimeError: the command failed (the message is CDP's).
        """
        mid = next(self._ids)
        fut: Future = Future()
        self._pending[mid] = fut
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        with self._lock:
            self._out.write(json.dumps(msg).encode() + b"\0")
        reply = fut.result(timeout)
        if "error" in reply:
            raise RuntimeError(f"CDP {method}: {reply['error']}")
        return reply.get("result", {})

    def goto(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)

    def eval(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page.

        Raises:
            RuntimeError: the expression threw (the message is the page's).
        """
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page threw: {r['exceptionDetails'].get('exception', {}).get('description')}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0, what: str | None = None) -> Any:
        """Poll ``expression`` until it is truthy; returns its value. A throw counts as falsy
        (the page may still be loading: ``document.body`` is null for a moment).

        Raises:
            AssertionError: still falsy after ``timeout`` s (the last throw is in the message).
        """
        last: list[str] = []

        def probe() -> Any:
            try:
                return self.eval(expression)
            except RuntimeError as exc:
                last[:] = [str(exc)]
                return None

        try:
            return wait_for(probe, timeout, interval=0.1, what=what or expression)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last error: {last[0]}" if last else str(exc)) from None

    def screenshot(self) -> bytes:
        """PNG of the viewport."""
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png")["data"])

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()
        self._in.close()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def pixels(png: bytes):
    """The PNG as an RGB numpy array, shape (h, w, 3), uint8."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
