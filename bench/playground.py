"""How fast the Playground paints: first contentful paint and time until it is usable.

Starts `python -m assistd serve` on a fresh SQLite data directory (local mode, no upstream needed
for loading the page), opens /playground/ in Debian's chromium (Playwright, headless) `--loads`
times in fresh browser contexts (empty cache), and prints, per load: first contentful paint (the
browser's own `paint` timing), DOMContentLoaded, and "ready" (the account box filled in, which
needs the API's answer). Target: first paint under 1 s from the local server.

    .venv/bin/python bench/playground.py            # 10 loads
    .venv/bin/python bench/playground.py --loads 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(base: str, loads: int) -> list[dict[str, float]]:
    out = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(loads):
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            page = await context.new_page()
            t0 = time.perf_counter()
            await page.goto(f"{base}/playground/")
            await page.locator("#account .acct").wait_for()
            ready = (time.perf_counter() - t0) * 1000
            timing = await page.evaluate(
                """() => ({
                    fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1,
                    dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                })"""
            )
            out.append({"fcp": timing["fcp"], "dcl": timing["dcl"], "ready": ready})
            await context.close()
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
        env.update(ASSISTD_DATA_DIR=str(Path(tmp) / "data"), ASSISTD_EMBEDDER="hash", ASSISTD_LOG_LEVEL="warning")
        proc = subprocess.Popen([sys.executable, "-m", "assistd", "serve", "--port", str(port)], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            rows = asyncio.run(measure(base, args.loads))
        finally:
            proc.terminate()
            proc.wait(20)
    for key, label in (
        ("fcp", "first contentful paint"),
        ("dcl", "DOMContentLoaded"),
        ("ready", "ready (API answered)"),
    ):
        values = sorted(r[key] for r in rows)
        print(f"{label:24s} p50 {statistics.median(values):7.1f} ms   max {values[-1]:7.1f} ms   (n={len(values)})")
    fcp = statistics.median(r["fcp"] for r in rows)
    print(f"target: first paint < 1000 ms: {'PASS' if 0 < fcp < 1000 else 'FAIL'}")


if __name__ == "__main__":
    main()
