"""How smooth the operator page stays under load: a benchmark, not a test (pytest skips it).

Opens the operator page of a running hub in headless Chromium and, for --seconds, records what
the page received and how it drew: `operator.drivers` frames and bytes per second, the drivers
drawn on the canvas, the gaps between animation frames (a page that keeps up paints every
~16.7 ms) and the main thread's long tasks (over 50 ms, which a user feels as a stutter).
With --socket-only it reads the same feed over a plain WebSocket instead (no browser), so the
hub's own cost of an operator can be measured without Chromium's on the same cores.
Prints one JSON object. Run it beside `taxi-hub loadtest` (BENCHMARKS.md has the commands):

    .venv-browser/bin/python Tests/Browser/operator_bench.py --url http://127.0.0.1:8080 \
        --data-dir /tmp/bench/data --seconds 20
"""
import argparse
import json
import os
import subprocess
import time
import urllib.request

import websocket
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PASSWORD = "operator-bench-password"

# Runs before the page's own scripts: counts the feed's frames and bytes, the gaps between
# animation frames and the long tasks.
PROBE = r"""
window.__bench = {frames: 0, bytes: 0, gaps: [], longTasks: [], last: 0, on: false};
const NativeSocket = window.WebSocket;
window.WebSocket = class extends NativeSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      if (window.__bench.on && typeof event.data === 'string' && event.data.includes('"operator.drivers"')) {
        window.__bench.frames += 1;
        window.__bench.bytes += event.data.length;
      }
    });
  }
};
new PerformanceObserver((list) => {
  if (window.__bench.on) for (const entry of list.getEntries()) window.__bench.longTasks.push(entry.duration);
}).observe({entryTypes: ['longtask']});
const tick = (now) => {
  const bench = window.__bench;
  if (bench.on && bench.last) bench.gaps.push(now - bench.last);
  bench.last = now;
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"""


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else None


def read_feed(url, username, seconds):
    """Logs in over REST and reads the operator feed over a plain WebSocket for `seconds`."""
    request = urllib.request.Request(url + "/api/log_in/", json.dumps({"username": username, "password": PASSWORD}).encode(),
                                     {"Content-Type": "application/json"})
    access = json.load(urllib.request.urlopen(request))["access"]
    socket = websocket.create_connection(url.replace("http", "ws", 1) + "/taxi/?token=" + access)
    frames = size = drivers = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = socket.recv()
        if '"operator.drivers"' in text:
            frames += 1
            size += len(text)
            drivers = max(drivers, len(json.loads(text)["data"]["drivers"]))
    socket.close()
    return {"seconds": seconds, "drivers_in_frames": drivers, "feed_frames_per_second": round(frames / seconds, 2),
            "feed_kib_per_second": round(size / seconds / 1024, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--data-dir", required=True, help="the hub's data folder (its JWT secret signs the admin token)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--binary", default=os.environ.get("TAXI_HUB_BINARY", ".build/release/taxi-hub"))
    parser.add_argument("--socket-only", action="store_true", help="read the feed without a browser")
    args = parser.parse_args()
    port = args.url.rsplit(":", 1)[1].strip("/")
    username = f"bench-operator-{int(time.time())}"
    subprocess.run([args.binary, "user", "create", "--operator", username, "--port", port, "--data-dir", args.data_dir,
                    "--log-level", "error"], input=PASSWORD + "\n", text=True, check=True, capture_output=True)
    if args.socket_only:
        print(json.dumps(read_feed(args.url, username, args.seconds), indent=2))
        return

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        driver.get(args.url + "/#/login")
        form = WebDriverWait(driver, 15).until(lambda d: d.find_element(By.CSS_SELECTOR, "#login-form"))
        form.find_element(By.NAME, "username").send_keys(username)
        form.find_element(By.NAME, "password").send_keys(PASSWORD)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#operator-map"))
        WebDriverWait(driver, 15).until(
            lambda d: int(d.find_element(By.CSS_SELECTOR, "#operator-map").get_attribute("data-drivers") or 0) > 0)
        driver.execute_script("window.__bench.on = true")
        drawn = 0
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            time.sleep(1)
            drawn = max(drawn, int(driver.find_element(By.CSS_SELECTOR, "#operator-map").get_attribute("data-drivers")))
        bench = driver.execute_script("window.__bench.on = false; return window.__bench")
    finally:
        driver.quit()
    gaps = bench["gaps"]
    print(json.dumps({
        "seconds": args.seconds,
        "drivers_drawn": drawn,
        "feed_frames_per_second": round(bench["frames"] / args.seconds, 2),
        "feed_kib_per_second": round(bench["bytes"] / args.seconds / 1024, 1),
        "animation_frames_per_second": round(len(gaps) / args.seconds, 1),
        "frame_gap_ms": {"p50": percentile(gaps, 0.5), "p99": percentile(gaps, 0.99), "max": max(gaps, default=None)},
        "long_tasks": len(bench["longTasks"]),
        "long_task_ms_total": round(sum(bench["longTasks"]), 1),
    }, indent=2))


if __name__ == "__main__":
    main()
