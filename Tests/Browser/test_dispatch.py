"""Dispatch in real browsers (issue 21): a request nobody accepts ends in "no driver found" with
a working *Try again*; a decline moves the offer on to the next driver; the rider sees the
driver's ETA, "arriving" and "arrived"; the rider's dashboard lists every open trip.

Each test has a hub of its own, started with the dispatch settings it needs (the session's hub
keeps the defaults, so no trip of these tests lingers in the others' lists). Drivers share
the browser's (emulated) position rather than simulate a route, so the test decides where
they are."""
import re
import threading
import time

import pytest
from selenium.webdriver.common.by import By

from conftest import (NYC, action_state, advance, attr, find, new_user, open_requested,
                      request_trip, run_hub, set_checkbox, set_location, status_of, visible,
                      wait_connected, wait_css, wait_for, wait_status)

SIZE = (1280, 800)
# Settings of the "no driver found" hub: a request waits this long for a driver.
DISPATCH_TIMEOUT = 3
# Default offer time-out of the other hubs (docs/configuration.md, offerTimeout).
OFFER_TIMEOUT = 15


def north_of(point, metres):
    """The point `metres` north of `point` (a degree of latitude is about 111,195 m)."""
    return point[0] + metres / 111_195, point[1]


def share_position(driver):
    """Switches on #share-position and waits until the page has sent a fix."""
    set_checkbox(driver, "#share-position", True)
    wait_for(driver, lambda d: "Last position" in (attr(d, ".position-readout", "textContent") or ""),
             10, f"[{driver.label}] #share-position sent no position")


def offer_css(trip_id):
    return f"#requested-trips li[data-trip-id='{trip_id}'] .offer"


def listed(driver, trip_id):
    return find(driver, f"#requested-trips li[data-trip-id='{trip_id}']") is not None


def text(driver, css):
    el = visible(driver, css)
    return el.text.strip() if el is not None else ""


@pytest.fixture
def timeout_hub():
    """Requests wait DISPATCH_TIMEOUT seconds for a driver."""
    yield from run_hub(["--dispatch-timeout", str(DISPATCH_TIMEOUT),
                        "--offer-timeout", str(DISPATCH_TIMEOUT)], "hub-dispatch-timeout.log")


@pytest.fixture
def rounds_hub():
    """Each offer round asks one driver, so the second driver is asked only after the first;
    the rest as by default (offerTimeout 15 s, arrivalRadius 50 m, pickupRadius 150 m)."""
    yield from run_hub(["--dispatch-drivers", "1"], "hub-dispatch-rounds.log")


def test_no_driver_found_then_try_again(timeout_hub, browser, shot):
    """No driver anywhere: the request ends after dispatchTimeout with "No driver found" and
    *Try again*, which requests the same trip anew; the dashboard lists the new trip and marks
    the first one."""
    hub = timeout_hub
    browser.origins.append(hub.base_url)
    rider = new_user(browser, hub, SIZE, "rider", "rider", location=NYC)
    wait_connected(rider)

    trip1, _ = request_trip(rider, hub)
    requested_at = time.monotonic()
    wait_status(rider, "CANCELED", trip1, DISPATCH_TIMEOUT + 6)
    waited = time.monotonic() - requested_at
    wait_for(rider, lambda d: "No driver found" in text(d, "#trip-status-text"), 5,
             f"#trip-status-text is {text(rider, '#trip-status-text')!r}, expected 'No driver found'")
    retry = wait_css(rider, "#retry-trip", 5)
    assert retry.text.strip() == "Try again" and retry.is_enabled()
    assert not find(rider, "#cancel-trip").is_displayed(), "a trip with no driver can still be canceled"
    assert waited < DISPATCH_TIMEOUT + 4, \
        f"no driver found after {waited:.1f} s (dispatchTimeout {DISPATCH_TIMEOUT} s)"
    shot(rider, "no-driver-found")

    # Try again: the page moves to the new request once the hub has it (its REQUESTED state,
    # with the same addresses). It too ends after DISPATCH_TIMEOUT s, so either state will do.
    pick_up = text(rider, "#trip-pick-up")
    rider.execute_script("arguments[0].click()", retry)

    def new_trip(d):
        shown = attr(d, "#trip-detail", "data-trip-id")
        return shown if shown and shown != trip1 else None
    trip2 = wait_for(rider, new_trip, 10, "Try again opened no new trip")
    wait_for(rider, lambda d: status_of(d) in ("REQUESTED", "CANCELED"), 5,
             f"the retried trip's page shows {status_of(rider)!r}")
    assert text(rider, "#trip-pick-up") == pick_up
    shot(rider, "tried-again")

    rider.execute_script("location.hash = '#/rider'")
    wait_for(rider, lambda d: find(d, f"#open-trips li[data-trip-id='{trip2}']")
             or find(d, f"#recent-trips li[data-trip-id='{trip2}']"), 10,
             "the retried trip is not on the rider's dashboard")
    old = wait_css(rider, f"#recent-trips li[data-trip-id='{trip1}']", 5)
    assert "No driver found" in old.text, f"#recent-trips shows the first trip as {old.text!r}"
    browser.assert_no_console_errors()


class Nudger:
    """Moves a driver a few metres back and forth once a second (a car waiting at the kerb):
    each move is a fix, as the hub needs two fixes 5 s apart to call the driver arrived."""

    def __init__(self, driver, a, b):
        self.driver, self.points, self.stop_event = driver, (a, b), threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stop_event.wait(1.0):
            i += 1
            try:
                set_location(self.driver, *self.points[i % 2])
            except Exception as e:  # noqa: BLE001 - reported by stop()
                self.errors.append(repr(e))
                return

    def stop(self):
        self.stop_event.set()
        self.thread.join(5)
        assert not self.errors, f"moving the driver failed: {self.errors}"


def test_decline_then_arrival(rounds_hub, browser, shot):
    """One ride (one test, to spare the suite a second set-up of browsers):

    1. Decline: two drivers near the pick-up, one driver per round. The nearer gets the offer
       and declines; the other gets it at once (round 2), long before the first offer would
       have expired, and accepts.
    2. Arrival: the accepting driver's position moves towards the pick-up; the rider's page
       shows its ETA, then "arriving" (within arrivalRadius), then "arrived" once it waits
       there. Meanwhile the rider requests a second trip: the dashboard lists both open trips,
       each with its state. At the pick-up the driver may say "picked up"."""
    hub = rounds_hub
    browser.origins.append(hub.base_url)
    rider = new_user(browser, hub, SIZE, "rider", "rider", location=NYC)
    near = new_user(browser, hub, SIZE, "driver", "near", location=north_of(NYC, 300))
    far = new_user(browser, hub, SIZE, "driver", "far", location=north_of(NYC, 700))
    for d in (rider, near, far):
        wait_connected(d)
    share_position(near)
    share_position(far)

    # 1. Decline.
    first, _ = request_trip(rider, hub)
    offer = wait_css(near, offer_css(first), 10)
    assert "round 1" in offer.text, f"the nearer driver's offer reads {offer.text!r}"
    assert re.search(r"\b\d+ s left\b", offer.text), f"no countdown in {offer.text!r}"
    assert not listed(far, first), "round 1 asked the farther driver too"
    shot(near, "near-offer")

    declined_at = time.monotonic()
    near.execute_script("arguments[0].click()", wait_css(near, f"#decline-{first}"))
    wait_for(near, lambda d: not listed(d, first), 5,
             "the declined offer stays on the nearer driver's #requested-trips")
    offer = wait_css(far, offer_css(first), 10)
    moved_on = time.monotonic() - declined_at
    assert moved_on < OFFER_TIMEOUT / 2, (
        f"the farther driver got the offer {moved_on:.1f} s after the decline: the trip waited "
        f"for the declined offer to expire")
    assert "round 2" in offer.text, f"the farther driver's offer reads {offer.text!r}"
    wait_for(rider, lambda d: "round 2" in text(d, "#trip-progress"), 5,
             f"the rider's #trip-progress is {text(rider, '#trip-progress')!r}, expected round 2")
    shot(far, "far-offer")
    shot(rider, "rider-round-2")

    open_requested(far, first)
    assert advance(far) == "STARTED"
    wait_status(rider, "STARTED", first, 10)
    assert not listed(near, first)

    # 2. Arrival.
    def progress(d):
        return text(d, "#trip-progress")

    set_location(far, *north_of(NYC, 250))
    wait_for(rider, lambda d: re.search(r"about \d+ min away", progress(d)), 10,
             f"the rider's #trip-progress is {progress(rider)!r}, expected the driver's ETA")
    assert "arriving" not in progress(rider).lower()
    shot(rider, "rider-eta")

    set_location(far, *north_of(NYC, 20))
    wait_for(rider, lambda d: attr(d, "#trip-progress", "data-arrival") == "arriving", 10,
             f"no 'arriving' on the rider's page: #trip-progress is {progress(rider)!r}")
    assert progress(rider) == "Your driver is arriving."
    shot(rider, "rider-arriving")

    # The driver waits at the pick-up while the rider requests another trip.
    nudger = Nudger(far, north_of(NYC, 20), north_of(NYC, 15))
    try:
        rider.execute_script("location.hash = '#/rider'")
        second, _ = request_trip(rider, hub)
        rider.execute_script("location.hash = '#/rider'")
        item = f"#open-trips li[data-trip-id='{first}']"
        wait_for(rider, lambda d: attr(d, item, "data-arrival") == "arrived", 15,
                 f"the dashboard's {item} never showed 'arrived': {text(rider, item)!r}")
    finally:
        nudger.stop()
    rows = rider.find_elements(By.CSS_SELECTOR, "#open-trips li[data-trip-id]")
    states = {r.get_attribute("data-trip-id"): (r.get_attribute("data-status"), r.text) for r in rows}
    assert set(states) == {first, second}, f"#open-trips lists {states}, expected both open trips"
    assert states[first][0] == "STARTED" and "Your driver has arrived at the pick-up." in states[first][1], states
    assert states[second][0] == "REQUESTED" and "Looking for a driver" in states[second][1], states
    assert rows[0].get_attribute("data-trip-id") == second, "the newest open trip is not first"
    shot(rider, "rider-two-open-trips")

    # The trip page says so too, and the driver may now say "picked up".
    rider.execute_script("arguments[0].click()", find(rider, f"{item} a"))
    wait_status(rider, "STARTED", first, 10)
    wait_for(rider, lambda d: progress(d) == "Your driver has arrived at the pick-up.", 5,
             f"the rider's trip page shows {progress(rider)!r} after the driver arrived")
    shot(rider, "rider-arrived")
    wait_for(far, lambda d: action_state(d)[1:] == ("Picked up — drive to drop-off", True), 5,
             f"the driver at the pick-up cannot say picked up: {action_state(far)}")
    shot(far, "driver-at-pick-up")
    browser.assert_no_console_errors()
