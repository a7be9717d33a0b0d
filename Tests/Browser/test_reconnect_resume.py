"""Killing the rider's socket: the page reconnects, resumes, and shows what it missed."""
import re
import time

import pytest

from conftest import (NYC, SIZE_IDS, SIZES, attr, new_user, open_requested, request_trip,
                      set_offline, start_simulation, status_of, advance, visible,
                      wait_connected, wait_for, wait_status, watch_page)

CONNECTION_WORDS = re.compile(r"connect|offline|online|network|socket", re.I)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_reconnect_resume(hub, browser, shot, size):
    rider = new_user(browser, hub, size, "rider", "rider", location=NYC)
    driver = new_user(browser, hub, size, "driver", "driver", location=(40.7140, -74.0050))
    wait_connected(rider)
    wait_connected(driver)
    start_simulation(driver, speed=25)
    trip_id, _ = request_trip(rider, hub)
    open_requested(driver, trip_id)
    shot(rider, "rider-live-trip")

    # While the rider's network is down (Chromium's offline emulation: its reconnects fail
    # until it is back), its socket is killed and the driver moves the trip twice.
    browser.expect_console_error(r"ERR_INTERNET_DISCONNECTED")
    watch_page(rider)
    set_offline(rider, True)
    dropped_at = time.time()
    rider.execute_script("window.taxiHub.dropConnection()")
    try:
        wait_for(rider, lambda d: attr(d, "#connection-state", "data-state") in
                 ("reconnecting", "offline"), 5,
                 "#connection-state did not leave 'connected' after dropConnection()")
        shot(rider, "rider-reconnecting")
        statuses = [advance(driver)]          # accept
        while len(statuses) < 2 or statuses[-1] == statuses[-2]:
            statuses.append(advance(driver))  # next actions until the status moves again
            assert len(statuses) < 5, f"the driver's actions did not move the trip: {statuses}"
        latest = status_of(driver)
        shot(driver, "driver-moved-trip")
        assert attr(rider, "#connection-state", "data-state") != "connected", \
            "the rider reconnected while its network was offline"
    finally:
        set_offline(rider, False)
    events_done_at = time.time()

    wait_connected(rider, 30)
    wait_status(rider, latest, trip_id, 15)
    shot(rider, "rider-resumed")

    states = rider.execute_script("return window.__states")
    seen = [s for s, t in states if t / 1000 >= dropped_at - 0.5]
    assert "reconnecting" in seen, f"#connection-state never showed 'reconnecting': {states}"
    assert seen[-1] == "connected", f"#connection-state did not end 'connected': {states}"
    reconnected = [t / 1000 for s, t in states if s == "connected" and t / 1000 >= dropped_at]
    assert reconnected and reconnected[-1] >= events_done_at - 0.5, \
        f"the rider reconnected before the driver's actions were done: {states}"

    # A toast for each state change it missed (accept, then the next move), not counting
    # toasts about the connection itself.
    wait_for(rider, lambda d: len([t for t, at in d.execute_script("return window.__toastLog")
                                   if at / 1000 >= dropped_at and
                                   not CONNECTION_WORDS.search(t)]) >= 2, 10,
             "the rider did not get a toast for each event it missed: "
             f"{rider.execute_script('return window.__toastLog')}")
    assert visible(rider, "#trip-detail")
    browser.assert_no_console_errors()
