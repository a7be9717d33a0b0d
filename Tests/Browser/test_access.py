"""Every screen's controls have an accessible name, the keyboard alone gets a user in, and one
browser can be the rider in one window and the driver in another."""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import (PASSWORD, SIZE_IDS, SIZES, find, js_click, log_in, new_user, open_page,
                      sign_up, unique, visible, wait_connected, wait_css, wait_for)

# The controls on the page that have no accessible name: no <label>, aria-label,
# aria-labelledby, title or text of their own.
UNNAMED_CONTROLS_JS = r"""
const unnamed = [];
for (const el of document.querySelectorAll('button, input, select, textarea, a[href], [role=button], [tabindex]')) {
  if (el.type === 'hidden' || el.closest('[hidden]') || el.getClientRects().length === 0) continue;
  const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim()))
    || (el.getAttribute('aria-label') || '').trim()
    || (el.getAttribute('aria-labelledby') || '').split(/\s+/).some((id) => id && document.getElementById(id)?.textContent.trim())
    || (el.getAttribute('title') || '').trim()
    || (!['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) && el.textContent.trim());
  if (!labelled) unnamed.push(el.outerHTML.slice(0, 120));
}
return unnamed;
"""


def assert_all_named(driver, screen):
    unnamed = driver.execute_script(UNNAMED_CONTROLS_JS)
    assert not unnamed, f"[{screen}] controls without an accessible name: {unnamed}"


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_every_control_has_an_accessible_name(hub, browser, shot, size):
    d = browser(size, label="visitor")
    open_page(d, hub)
    wait_css(d, "#nav-signup")
    assert_all_named(d, "landing")
    js_click(d, "#nav-signup")
    wait_css(d, "#signup-form")
    assert_all_named(d, "sign up")
    open_page(d, hub, "#/login")
    wait_css(d, "#login-form")
    assert_all_named(d, "log in")

    rider = new_user(browser, hub, size, "rider", "rider")
    wait_connected(rider)
    assert_all_named(rider, "rider dashboard")
    js_click(rider, "#request-trip-link")
    wait_css(rider, "#request-form")
    assert_all_named(rider, "request a trip")
    shot(rider, "request-form")

    driver = new_user(browser, hub, size, "driver", "driver")
    wait_connected(driver)
    assert_all_named(driver, "driver dashboard")

    name, password = hub.create_operator(unique("operator-"))
    operator = browser(size, label="operator")
    open_page(operator, hub)
    log_in(operator, hub, name, password, dashboard="operator")
    assert_all_named(operator, "operator")


def test_keyboard_alone_logs_in(hub, browser, shot):
    d = browser((1280, 800), label="keyboard")
    name = unique("rider-")
    sign_up(d, hub, name, "rider")
    if visible(d, "#rider-dashboard"):
        js_click(d, "#logout")
    open_page(d, hub, "#/login")
    wait_css(d, "#login-form")
    body = d.find_element(By.TAG_NAME, "body")
    body.click()
    # Tab until the username field has the focus, then type and press Enter: no mouse.
    for _ in range(30):
        focused = d.switch_to.active_element
        if focused.get_attribute("name") == "username":
            break
        focused.send_keys(Keys.TAB)
    else:
        pytest.fail("Tab never reached the username field of #login-form")
    d.switch_to.active_element.send_keys(name)
    d.switch_to.active_element.send_keys(Keys.TAB)
    assert d.switch_to.active_element.get_attribute("name") == "password"
    d.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    wait_css(d, "#rider-dashboard", 15)
    shot(d, "logged-in-by-keyboard")


def test_rider_and_driver_in_two_windows_of_one_browser(hub, browser, shot):
    d = new_user(browser, hub, (1280, 800), "rider", "one-browser")
    wait_connected(d)
    rider_window = d.current_window_handle
    d.switch_to.new_window("window")
    open_page(d, hub)
    # A new window starts from the last log-in on this browser; log out and log in as a driver.
    wait_css(d, "#rider-dashboard", 15)
    js_click(d, "#logout")
    driver_name = unique("driver-")
    sign_up(d, hub, driver_name, "driver")
    log_in(d, hub, driver_name, dashboard="driver")
    wait_connected(d)
    shot(d, "driver-window")

    d.switch_to.window(rider_window)
    d.refresh()
    wait_css(d, "#rider-dashboard", 15)
    wait_connected(d)
    assert "Rider" in find(d, "#user-box").text, "the rider's window lost its own log-in"
    shot(d, "rider-window")
