"""The operator's page: live drivers, live trips and the hub's health."""
import pytest
from selenium.webdriver.common.by import By

from conftest import (NYC, SIZE_IDS, SIZES, advance, attr, find, log_in, new_user, open_page,
                      open_requested, request_trip, start_simulation, unique, wait_connected,
                      wait_css, wait_for)


def metrics(d):
    return {el.get_attribute("data-metric"): el.text.strip()
            for el in d.find_elements(By.CSS_SELECTOR, "#health [data-metric]")}


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_operator(hub, browser, shot, size):
    name, password = hub.create_operator(unique("operator-"))
    operator = browser(size, label="operator")
    open_page(operator, hub)
    log_in(operator, hub, name, password, dashboard="operator")
    wait_connected(operator)
    shot(operator, "operator-dashboard")

    driver = new_user(browser, hub, size, "driver", "driver", location=(40.7140, -74.0050))
    wait_connected(driver)
    start_simulation(driver, speed=25)
    rider = new_user(browser, hub, size, "rider", "rider", location=NYC)
    wait_connected(rider)
    trip_id, _ = request_trip(rider, hub)

    def drivers_drawn(d):
        value = attr(d, "#operator-map", "data-drivers")
        return value is not None and value.isdigit() and int(value) >= 1
    wait_for(operator, drivers_drawn, 10,
             f"#operator-map[data-drivers] is {attr(operator, '#operator-map', 'data-drivers')!r}"
             ", expected ≥ 1 while a driver shares its simulated position")
    row = f"#live-trips li[data-trip-id='{trip_id}']"
    wait_for(operator, lambda d: attr(d, row, "data-status") == "REQUESTED", 10,
             f"{row} shows {attr(operator, row, 'data-status')!r}, expected 'REQUESTED'")
    wait_css(operator, "#trip-counts [data-status]", shown=False)
    shot(operator, "operator-trip-requested")

    open_requested(driver, trip_id)
    status = advance(driver)
    assert status not in (None, "REQUESTED"), f"the driver's accept left the trip {status!r}"
    wait_for(operator, lambda d: attr(d, row, "data-status") == status, 10,
             f"{row} shows {attr(operator, row, 'data-status')!r} after the accept, "
             f"expected {status!r}")
    shot(operator, "operator-trip-accepted")

    # The health panel is filled in and refreshes (operator.stats comes once a second).
    wait_for(operator, lambda d: metrics(d) and all(metrics(d).values()), 10,
             f"#health [data-metric] missing or empty: {metrics(operator)}")
    first = metrics(operator)
    wait_for(operator, lambda d: metrics(d) != first, 10,
             f"#health metrics did not change within 10 s: {first}")
    assert find(operator, "#operator-dashboard") is not None
    shot(operator, "operator-health")
    browser.assert_no_console_errors()
