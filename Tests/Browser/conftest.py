"""Fixtures and helpers of TaxiHub's real-browser tests.

The tests drive headless Chromium (Debian's chromium + chromium-driver) through Selenium
against a real hub started on loopback. The elements they use are the contract in
docs/web-client.md. Run them with scripts/browser-test.
"""
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.path.join(REPO, "test-artifacts", "browser")
SIZES = [(375, 667), (1280, 800)]
SIZE_IDS = ["375x667", "1280x800"]
PASSWORD = "secret-pass-123"
# The hub is told its street tiles are at an unreachable loopback port, so the client must
# fall back to its vector map. Failed loads of these tiles are the one console error that is
# expected by design.
TILE_URL = "http://127.0.0.1:9/{z}/{x}/{y}.png"
TILE_ERROR_MARK = "127.0.0.1:9/"
NYC = (40.7128, -74.0060)

os.makedirs(ARTIFACTS, exist_ok=True)


# --------------------------------------------------------------------------- the hub

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary():
    path = os.environ.get("TAXI_HUB_BINARY", ".build/debug/taxi-hub")
    return path if os.path.isabs(path) else os.path.join(REPO, path)


class Hub:
    def __init__(self, binary, port, data_dir, media_dir, log_path):
        self.binary = binary
        self.port = port
        self.host = "127.0.0.1"
        self.base_url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.media_dir = media_dir
        self.log_path = log_path
        self.process = None

    extra_args = ()

    def serve_args(self):
        args = [self.binary, "serve", "--host", self.host, "--port", str(self.port),
                "--data-dir", self.data_dir, "--media-dir", self.media_dir,
                "--bcrypt-cost", "4", "--snapshot-interval", "0.2", "--tile-url", TILE_URL,
                # every test logs in from 127.0.0.1: no throttling of one address here
                "--login-rate-per-address", "100000"]
        if os.environ.get("TAXI_HUB_WEB_ROOT"):
            args += ["--web-root", os.environ["TAXI_HUB_WEB_ROOT"]]
        return args + list(self.extra_args)

    def log_tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def get(self, path, token=None):
        """GET from the hub's API; returns (status, parsed JSON or text)."""
        req = urllib.request.Request(self.base_url + path)
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                body, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            body, status = e.read(), e.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def create_operator(self, username, password=PASSWORD):
        """Makes an operator account with `taxi-hub user create --operator` (password on stdin)."""
        result = subprocess.run(
            [self.binary, "user", "create", "--operator", username, "--host", self.host,
             "--port", str(self.port), "--data-dir", self.data_dir],
            input=password + "\n", capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (
            f"taxi-hub user create --operator {username} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}")
        return username, password


@pytest.fixture(scope="session")
def hub():
    yield from run_hub()


def run_hub(extra_args=(), log_name="hub.log", port=None):
    """Starts a hub (`serve` with `extra_args`, on `port` or a free one), yields it once it
    answers /healthz, and stops it afterwards; its log goes to test-artifacts/browser/."""
    binary = _binary()
    assert os.path.isfile(binary) and os.access(binary, os.X_OK), f"no hub binary at {binary}"
    tmp = tempfile.mkdtemp(prefix="taxihub-browser-")
    data_dir, media_dir = os.path.join(tmp, "data"), os.path.join(tmp, "media")
    os.makedirs(data_dir)
    os.makedirs(media_dir)
    h = Hub(binary, port or _free_port(), data_dir, media_dir, os.path.join(ARTIFACTS, log_name))
    h.extra_args = tuple(extra_args)
    log = open(h.log_path, "w")
    h.process = subprocess.Popen(h.serve_args(), stdout=log, stderr=subprocess.STDOUT,
                                 cwd=tmp, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if h.process.poll() is not None:
                pytest.fail(f"the hub exited with {h.process.returncode} while starting:\n"
                            f"{h.log_tail()}")
            try:
                with urllib.request.urlopen(h.base_url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the hub did not answer /healthz within 60 s:\n{h.log_tail()}")
            time.sleep(0.1)
        yield h
    finally:
        if h.process.poll() is None:
            h.process.send_signal(signal.SIGTERM)
            try:
                h.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                h.process.kill()
                h.process.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- browsers

def _is_error(entry):
    if entry.get("level") != "SEVERE":
        return False
    return TILE_ERROR_MARK not in entry.get("message", "")


class Browsers:
    """Makes headless Chromium sessions and checks their consoles for errors."""

    def __init__(self, hub, test_name):
        self.hub = hub
        self.test_name = test_name
        self.drivers = []
        self.errors = []          # (label, message)
        self.expected = []        # regexes of console errors a test expects by design
        self.origins = [hub.base_url]  # origins granted geolocation (a test may add its own hub)

    def __call__(self, size, label=None, location=NYC):
        width, height = size
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--no-first-run", "--disable-extensions",
                    f"--window-size={width},{height}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.label = label or f"browser{len(self.drivers) + 1}"
        driver.size = (width, height)
        self.drivers.append(driver)
        driver.set_page_load_timeout(30)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        for origin in self.origins:
            driver.execute_cdp_cmd("Browser.grantPermissions", {
                "origin": origin, "permissions": ["geolocation"]})
        if location:
            set_location(driver, *location)
        return driver

    def expect_console_error(self, pattern):
        """Allows console errors matching `pattern` (a regex) in this test only."""
        self.expected.append(re.compile(pattern))

    def collect(self, driver):
        try:
            entries = driver.get_log("browser")
        except WebDriverException:
            return
        for e in entries:
            if _is_error(e) and not any(p.search(e.get("message", "")) for p in self.expected):
                self.errors.append((driver.label, e.get("message", "")))

    def assert_no_console_errors(self):
        for d in self.drivers:
            self.collect(d)
        if self.errors:
            lines = "\n".join(f"  [{label}] {msg}" for label, msg in self.errors)
            self.errors = []
            pytest.fail(f"browser console errors:\n{lines}")

    def close(self):
        for d in self.drivers:
            self.collect(d)
            try:
                d.quit()
            except WebDriverException:
                pass
        self.drivers = []


@pytest.fixture
def browser(hub, request):
    """Factory: browser((width, height), label=..., location=(lat, lng)) -> WebDriver.

    Every browser is quit at the end of the test, after its console was read: any SEVERE
    entry (errors, uncaught exceptions, failed loads) fails the test, except failed loads of
    the unreachable tile server.
    """
    b = Browsers(hub, request.node.name)
    yield b
    b.close()
    if b.errors:
        lines = "\n".join(f"  [{label}] {msg}" for label, msg in b.errors)
        pytest.fail(f"browser console errors:\n{lines}")


@pytest.fixture
def shot(request):
    """shot(driver, name): saves test-artifacts/browser/<test>/<NN>-<name>-<W>x<H>.png."""
    folder = os.path.join(ARTIFACTS, re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name))
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder, exist_ok=True)
    counter = [0]

    def take(driver, name):
        counter[0] += 1
        w, h = driver.size
        path = os.path.join(folder, f"{counter[0]:02d}-{name}-{w}x{h}.png")
        driver.save_screenshot(path)
        return path

    return take


# --------------------------------------------------------------------------- helpers

def set_location(driver, lat, lng, accuracy=5):
    driver.execute_cdp_cmd("Emulation.setGeolocationOverride",
                           {"latitude": lat, "longitude": lng, "accuracy": accuracy})


def wait_for(driver, predicate, timeout=15, message=""):
    """Waits until predicate(driver) is truthy and returns its value.

    Stale or missing elements while waiting count as "not yet".
    """
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException)).until(predicate, message)


def find(driver, css):
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0] if els else None


def visible(driver, css):
    el = find(driver, css)
    return el if el is not None and el.is_displayed() else None


def wait_css(driver, css, timeout=15, shown=True):
    """Waits for an element (displayed, unless shown=False) and returns it."""
    return wait_for(driver, lambda d: visible(d, css) if shown else find(d, css), timeout,
                    f"[{getattr(driver, 'label', '')}] no element {css} after {timeout} s "
                    f"(at {driver.current_url})")


def attr(driver, css, name):
    el = find(driver, css)
    return el.get_attribute(name) if el is not None else None


def js_click(driver, css):
    el = wait_css(driver, css)
    driver.execute_script("arguments[0].click()", el)


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def fill(form, name, value):
    el = form.find_element(By.CSS_SELECTOR, f"[name='{name}']")
    el.clear()
    el.send_keys(value)


def submit(driver, form):
    buttons = form.find_elements(By.CSS_SELECTOR, "button[type=submit], input[type=submit], "
                                                  "button:not([type])")
    if buttons and buttons[0].is_displayed():
        buttons[0].click()
    else:
        driver.execute_script("arguments[0].requestSubmit()", form)


def open_page(driver, hub, route=""):
    """Opens the client at `route`; with the query a test gave the browser (`driver.page_query`,
    e.g. `?hubs=...`), so every page this browser opens keeps it."""
    driver.get(hub.base_url + "/" + getattr(driver, "page_query", "") + route)


def sign_up(driver, hub, username, group, photo_path=None, password=PASSWORD,
            password2=None, first_name="Test", last_name=None, expect_ok=True):
    """Signs up through #signup-form, starting at the landing page's #nav-signup link."""
    if find(driver, "#signup-form") is None:
        open_page(driver, hub)
        js_click(driver, "#nav-signup")
    form = wait_css(driver, "#signup-form")
    fill(form, "username", username)
    fill(form, "first_name", first_name)
    fill(form, "last_name", last_name or group.capitalize())
    fill(form, "password1", password)
    fill(form, "password2", password if password2 is None else password2)
    radio = form.find_element(By.CSS_SELECTOR, f"input[name='group'][value='{group}']")
    driver.execute_script("arguments[0].click()", radio)
    if photo_path:
        form.find_element(By.CSS_SELECTOR, "input[name='photo']").send_keys(photo_path)
    submit(driver, form)
    if not expect_ok:
        return
    # A sign-up leads to the log-in form or straight to the user's dashboard.
    wait_for(driver, lambda d: visible(d, "#login-form") or visible(d, f"#{group}-dashboard")
             or (visible(d, "#signup-form .form-error") and
                 d.find_element(By.CSS_SELECTOR, "#signup-form .form-error").text.strip()
                 and pytest.fail("sign-up refused: " + d.find_element(
                     By.CSS_SELECTOR, "#signup-form .form-error").text)),
             15, f"[{driver.label}] sign-up of {username} led nowhere")


def log_in(driver, hub, username, password=PASSWORD, dashboard=None):
    """Logs in through #login-form; waits for `dashboard` (e.g. 'rider') when given."""
    if dashboard and visible(driver, f"#{dashboard}-dashboard"):
        return  # the sign-up logged in already
    if find(driver, "#login-form") is None:
        open_page(driver, hub)
        js_click(driver, "#nav-login")
    form = wait_css(driver, "#login-form")
    fill(form, "username", username)
    fill(form, "password", password)
    submit(driver, form)
    if dashboard:
        wait_css(driver, f"#{dashboard}-dashboard", 15)


def new_user(browser_factory, hub, size, group, label, photo_path=None, location=NYC,
             page_query=""):
    d = browser_factory(size, label=label, location=location)
    d.page_query = page_query
    name = unique(f"{group}-")
    open_page(d, hub)
    sign_up(d, hub, name, group, photo_path=photo_path)
    log_in(d, hub, name, dashboard=group)
    d.username = name
    return d


def wait_connected(driver, timeout=15):
    wait_for(driver, lambda d: attr(d, "#connection-state", "data-state") == "connected",
             timeout, f"[{driver.label}] #connection-state never became connected "
                      f"(is {attr(driver, '#connection-state', 'data-state')!r})")


def toasts(driver):
    return [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#toasts .toast")]


def local_storage(driver):
    """Everything the page keeps in localStorage, as a dict."""
    return driver.execute_script(
        "const o = {}; for (let i = 0; i < localStorage.length; i++) {"
        " const k = localStorage.key(i); o[k] = localStorage.getItem(k); } return o;")


def marker_position(driver, kind="car"):
    el = find(driver, f"#map [data-marker={kind}]") or find(driver, f"[data-marker={kind}]")
    if el is None:
        return None
    lat, lng = el.get_attribute("data-lat"), el.get_attribute("data-lng")
    if lat in (None, "") or lng in (None, ""):
        return None
    return float(lat), float(lng)


def tiny_png(path, width=4, height=4, rgb=(200, 30, 30)):
    """Writes a small valid PNG with zlib and struct only."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw))
           + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
    return path


@pytest.fixture
def photo(tmp_path):
    return tiny_png(str(tmp_path / "rider.png"))


# --------------------------------------------------------------------------- ride steps

def set_checkbox(driver, css, on=True):
    el = wait_css(driver, css, shown=False)
    if el.is_selected() != on:
        driver.execute_script("arguments[0].click()", el)
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).is_selected() == on, 5,
             f"[{driver.label}] {css} did not become {'checked' if on else 'unchecked'}")


def start_simulation(driver, speed=25):
    """Turns on the driver's simulated route at `speed` m/s."""
    wait_css(driver, "#driver-dashboard")
    sim_speed = wait_css(driver, "#sim-speed", shown=False)
    driver.execute_script(
        "const e = arguments[0]; e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));"
        "e.dispatchEvent(new Event('change', {bubbles: true}));", sim_speed, str(speed))
    set_checkbox(driver, "#simulate-route", True)


def request_trip(driver, hub, pick_up="11 Wall Street", drop_off="350 Fifth Avenue", shot=None):
    """Requests a trip through #request-form (pick-up point from #use-my-location).

    Returns the new trip's id once #trip-detail shows it as REQUESTED.
    """
    wait_css(driver, "#rider-dashboard")
    js_click(driver, "#request-trip-link")
    form = wait_css(driver, "#request-form")
    fill(form, "pick_up_address", pick_up)
    fill(form, "drop_off_address", drop_off)
    js_click(driver, "#use-my-location")
    point = wait_for(driver, lambda d: marker_like(d, "#pick-up-point"), 10,
                     f"[{driver.label}] #pick-up-point got no data-lat/data-lng from geolocation")
    if shot:
        shot(driver, "request-form")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#request-form"))
    trip_id = wait_for(driver, lambda d: attr(d, "#trip-detail", "data-trip-id"), 15,
                       f"[{driver.label}] no #trip-detail[data-trip-id] after requesting a trip")
    wait_status(driver, "REQUESTED", trip_id)
    return trip_id, point


def marker_like(driver, css):
    el = find(driver, css)
    if el is None:
        return None
    lat, lng = el.get_attribute("data-lat"), el.get_attribute("data-lng")
    if not lat or not lng:
        return None
    return float(lat), float(lng)


def status_of(driver):
    return attr(driver, "#trip-detail", "data-status")


def wait_status(driver, status, trip_id=None, timeout=15):
    def ok(d):
        if trip_id and attr(d, "#trip-detail", "data-trip-id") != trip_id:
            return False
        return status_of(d) == status
    wait_for(driver, ok, timeout,
             f"[{driver.label}] #trip-detail[data-status] is {status_of(driver)!r}, "
             f"expected {status!r} (trip {attr(driver, '#trip-detail', 'data-trip-id')!r})")


def wait_requested(driver, trip_id, timeout=20):
    return wait_css(driver, f"#requested-trips li[data-trip-id='{trip_id}']", timeout)


def open_requested(driver, trip_id):
    """Opens a trip from the driver's #requested-trips list; waits for its #trip-action."""
    li = wait_requested(driver, trip_id)
    targets = li.find_elements(By.CSS_SELECTOR, "a, button")
    driver.execute_script("arguments[0].click()", targets[0] if targets else li)
    wait_for(driver, lambda d: attr(d, "#trip-detail", "data-trip-id") == trip_id, 10,
             f"[{driver.label}] clicking trip {trip_id} in #requested-trips opened no #trip-detail")
    return wait_css(driver, "#trip-action")


def action_state(driver):
    el = find(driver, "#trip-action")
    shown = el is not None and el.is_displayed()
    return (status_of(driver), el.text.strip() if shown else None,
            shown and el.is_enabled())


def advance(driver, timeout=60):
    """Clicks #trip-action once it is enabled; waits until the status or the action changes."""
    wait_for(driver, lambda d: action_state(d)[2], timeout,
             f"[{driver.label}] #trip-action not shown/enabled (status {status_of(driver)!r})")
    before = action_state(driver)
    driver.execute_script("arguments[0].click()", find(driver, "#trip-action"))
    wait_for(driver, lambda d: action_state(d)[:2] != before[:2], 15,
             f"[{driver.label}] clicking #trip-action ({before[1]!r}) changed nothing "
             f"(status {before[0]!r})")
    return status_of(driver)


def drive_to(driver, final="COMPLETED", max_steps=6):
    """Clicks through the driver's next actions until the trip's status is `final`."""
    for _ in range(max_steps):
        if status_of(driver) == final:
            return
        advance(driver)
    wait_status(driver, final)


def watch_page(driver):
    """Records #connection-state changes and added toasts (with Date.now()) in the page."""
    driver.execute_script("""
        window.__states = []; window.__toastLog = [];
        const cs = document.querySelector('#connection-state');
        window.__states.push([cs ? cs.getAttribute('data-state') : null, Date.now()]);
        new MutationObserver(() => {
            const s = document.querySelector('#connection-state');
            const v = s ? s.getAttribute('data-state') : null;
            const last = window.__states[window.__states.length - 1];
            if (!last || last[0] !== v) window.__states.push([v, Date.now()]);
        }).observe(document.body, {subtree: true, attributes: true, childList: true,
                                   attributeFilter: ['data-state']});
        const toasts = document.querySelector('#toasts');
        if (toasts) new MutationObserver(muts => {
            for (const m of muts) for (const n of m.addedNodes)
                if (n.nodeType === 1 && n.classList.contains('toast'))
                    window.__toastLog.push([n.textContent.trim(), Date.now()]);
        }).observe(toasts, {childList: true, subtree: true});
    """)


def set_offline(driver, offline):
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


__all__ = [name for name in dir() if not name.startswith("_")]
