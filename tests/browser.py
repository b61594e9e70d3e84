"""A headless Chromium driven over the DevTools protocol on a pipe (standard library only:
no Selenium, no driver binary). Used by tests/test_site.py on the built documentation."""

import base64
import json
import os
import shutil
import subprocess
import time


def chromium() -> str | None:
    """The Chromium binary (Debian's ``chromium``), or ``None``."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless page: ``open(url)``, ``evaluate(js)``, ``wait_for(js)``, ``screenshot()``."""

    def __init__(self, binary: str, width: int = 1200, height: int = 900, extra: tuple = ()):
        cmd_read, self._cmd = os.pipe()           # we write commands, Chromium reads fd 3
        self._out, out_write = os.pipe()          # Chromium writes fd 4, we read
        # bash puts our pipe ends at fds 3 and 4, where Chromium looks for them (dash takes
        # only one-digit fds; no preexec_fn: a fork of this multithreaded JAX process warns).
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                f"--window-size={width},{height}", "--no-first-run", *extra, "about:blank"]
        self.process = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c",
             f'exec "$0" "$@" 3<&{cmd_read} 4>&{out_write}', *args],
            pass_fds=(cmd_read, out_write), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(cmd_read)
        os.close(out_write)
        self._buffer, self._id, self.events = b"", 0, []
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target,
                                                             "flatten": True})["sessionId"]
        self._call("Page.enable", session=True)
        self._call("Runtime.enable", session=True)

    def _send(self, message: dict) -> None:
        os.write(self._cmd, json.dumps(message).encode() + b"\0")

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _call(self, method: str, params: dict | None = None, session: bool = False,
              timeout: float = 30.0) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        self._send(message)
        while True:
            answer = self._read(timeout)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Load ``url`` and wait for its load event."""
        self.events.clear()
        self._call("Page.navigate", {"url": url}, session=True)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            self.events.append(self._read(timeout))

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page."""
        result = self._call("Runtime.evaluate", {"expression": expression,
                                                 "returnByValue": True}, session=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        """Poll ``expression`` until it is truthy; its value (``None`` on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return None

    def screenshot(self, path: str) -> None:
        """Save the visible page as a PNG."""
        data = self._call("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._send({"id": 0, "method": "Browser.close"})
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._cmd)
        os.close(self._out)
