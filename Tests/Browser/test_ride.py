"""The whole ride in real browsers: sign-up, dispatch, the race to accept, live tracking,
completion and history."""
import threading
import time

import pytest

from conftest import (NYC, SIZE_IDS, SIZES, attr, drive_to, find, marker_position, new_user,
                      open_page, open_requested, request_trip, start_simulation, status_of,
                      visible, wait_connected, wait_css, wait_for, wait_status, watch_page)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_ride(hub, browser, shot, photo, size):
    rider = new_user(browser, hub, size, "rider", "rider", photo_path=photo, location=NYC)
    # Two drivers a few hundred metres from the rider.
    driver1 = new_user(browser, hub, size, "driver", "driver1", location=(40.7150, -74.0060))
    driver2 = new_user(browser, hub, size, "driver", "driver2", location=(40.7128, -74.0095))
    drivers = [driver1, driver2]
    for d in (rider, *drivers):
        wait_connected(d)
    shot(rider, "rider-dashboard")

    for d in drivers:
        start_simulation(d, speed=25)
    shot(driver1, "driver-simulating")

    trip_id, point = request_trip(rider, hub, shot=shot)
    assert abs(point[0] - NYC[0]) < 0.01 and abs(point[1] - NYC[1]) < 0.01, \
        f"#pick-up-point {point} is not the emulated position {NYC}"
    shot(rider, "trip-requested")

    # Both drivers are alerted and open the trip.
    for d in drivers:
        wait_css(d, f"#requested-trips li[data-trip-id='{trip_id}']", 20)
    shot(driver1, "driver-alerted")
    buttons = [open_requested(d, trip_id) for d in drivers]
    shot(driver2, "driver-trip-open")

    # The race: both click Accept at (nearly) the same moment.
    watch_page(rider)  # records the toasts it gets from now on
    barrier = threading.Barrier(2)
    failures = []

    def accept(d, button):
        try:
            barrier.wait(5)
            d.execute_script("arguments[0].click()", button)
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(f"[{d.label}] {e!r}")

    threads = [threading.Thread(target=accept, args=(d, b)) for d, b in zip(drivers, buttons)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert not failures, failures

    def taken(d):
        el = visible(d, "#trip-taken")
        return el is not None and "taken by another driver" in el.text

    def report():
        return "; ".join(f"{d.label}: status={status_of(d)!r} "
                         f"trip-taken={attr(d, '#trip-taken', 'textContent')!r}"
                         for d in drivers)

    try:
        wait_for(rider, lambda _: any(taken(d) for d in drivers), 15)
    except Exception:
        pytest.fail("after both drivers clicked Accept, neither shows #trip-taken "
                    "'taken by another driver': " + report())
    lost = [d for d in drivers if taken(d)]
    assert len(lost) == 1, f"both drivers were told the trip is taken: {report()}"
    loser = lost[0]
    winner = driver2 if loser is driver1 else driver1
    try:
        wait_for(winner, lambda d: status_of(d) not in (None, "REQUESTED"), 10)
    except Exception:
        pytest.fail(f"the winning driver's #trip-detail never left REQUESTED: {report()}")
    assert not taken(winner) and taken(loser), f"exactly one driver must win: {report()}"
    shot(winner, "driver-accepted")
    shot(loser, "driver-taken")

    # The rider is told and follows the car.
    wait_for(rider, lambda d: d.execute_script("return window.__toastLog.length") > 0, 10,
             "the rider got no #toasts .toast after its trip was accepted")
    wait_for(rider, lambda d: status_of(d) not in (None, "REQUESTED"), 10,
             f"the rider's #trip-detail stayed {status_of(rider)!r} after the accept")
    shot(rider, "rider-accepted-toast")
    wait_for(rider, lambda d: marker_position(d, "car"), 15,
             "no [data-marker=car] with data-lat/data-lng on the rider's map")
    positions = []
    for i in range(4):
        positions.append(marker_position(rider, "car"))
        if i < 3:
            time.sleep(2.2)
    rider.execute_script("document.querySelector('#map').scrollIntoView({block: 'center'})")
    shot(rider, "rider-car-moving")
    assert None not in positions, f"the car marker disappeared: {positions}"
    assert len(set(positions)) > 1, \
        f"the rider's car marker did not move over {2.2 * 3:.1f} s: {positions}"

    # The winner drives the trip to the end.
    drive_to(winner, "COMPLETED")
    shot(winner, "driver-completed")
    wait_status(rider, "COMPLETED", trip_id, 15)
    shot(rider, "rider-completed")

    # Both find it in their history.
    open_page(rider, hub, "#/rider")
    wait_css(rider, f"#recent-trips li[data-trip-id='{trip_id}']", 15)
    shot(rider, "rider-history")
    open_page(winner, hub, "#/driver")
    wait_css(winner, f"#completed-trips li[data-trip-id='{trip_id}']", 15)
    shot(winner, "driver-history")

    # The losing driver's list no longer offers the trip.
    open_page(loser, hub, "#/driver")
    wait_css(loser, "#driver-dashboard")
    wait_for(loser, lambda d: find(d, f"#requested-trips li[data-trip-id='{trip_id}']") is None,
             10, "the losing driver's #requested-trips still lists the taken trip")
    shot(loser, "loser-dashboard")

    browser.assert_no_console_errors()
