"""Landing, sign-up and log-in errors, log-out, a tampered token, and the vector map."""
import pytest

from conftest import (PASSWORD, SIZE_IDS, SIZES, attr, find, js_click, local_storage, log_in,
                      open_page, sign_up, unique, visible, wait_css, wait_for)

TAMPER_JS = r"""
let changed = 0;
for (const storage of [localStorage, sessionStorage]) {
    for (let i = 0; i < storage.length; i++) {
        const k = storage.key(i), v = storage.getItem(k);
        const t = v.replace(/(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.)([A-Za-z0-9_-]+)/g,
            (m, head, sig) => { changed++; return head + sig.split('').reverse().join('') + 'x'; });
        if (t !== v) storage.setItem(k, t);
    }
}
return changed;
"""


def message_text(d, *selectors):
    for css in selectors:
        el = visible(d, css)
        if el is not None and el.text.strip():
            return el.text.strip()
    return None


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_auth_screens(hub, browser, shot, size):
    # The errors this test provokes on purpose are answered 400/401, which Chromium logs.
    browser.expect_console_error(r"/api/sign_up/.*status of 400")
    browser.expect_console_error(r"/api/(log_in|token/refresh|trip)/.*status of 401")
    browser.expect_console_error(r"/taxi/\?token=.*(401|403|failed)")
    d = browser(size, label="user")
    open_page(d, hub)
    wait_css(d, "#nav-login")
    wait_css(d, "#nav-signup")
    shot(d, "landing")

    # Sign-up with passwords that differ.
    name = unique("rider-")
    sign_up(d, hub, name, "rider", password2=PASSWORD + "-other", expect_ok=False)
    wait_for(d, lambda x: message_text(x, "#signup-form .form-error"), 10,
             "no #signup-form .form-error after a password mismatch")
    assert visible(d, "#signup-form") is not None
    shot(d, "signup-mismatch")

    # A good sign-up, then a wrong password.
    sign_up(d, hub, name, "rider")
    if visible(d, "#rider-dashboard"):
        js_click(d, "#logout")
    if find(d, "#login-form") is None:
        open_page(d, hub)
        js_click(d, "#nav-login")
    log_in(d, hub, name, "wrong-password-1")
    wait_for(d, lambda x: message_text(x, "#login-form .form-error", "#login-message"), 10,
             "a wrong password showed no message (#login-form .form-error / #login-message)")
    assert visible(d, "#rider-dashboard") is None
    shot(d, "login-wrong-password")

    # The right password, the map (vector: the tile server is unreachable), log out.
    log_in(d, hub, name, PASSWORD, dashboard="rider")
    shot(d, "rider-dashboard")
    if find(d, "#map") is None:
        js_click(d, "#request-trip-link")
    wait_for(d, lambda x: attr(x, "#map", "data-mode") == "vector", 15,
             f"#map[data-mode] is {attr(d, '#map', 'data-mode')!r}, expected 'vector' "
             "(the tile server is unreachable)")
    shot(d, "vector-map")
    js_click(d, "#logout")
    wait_for(d, lambda x: visible(x, "#login-form") or visible(x, "#nav-login"), 10,
             "log out did not return to the landing page or #login-form")
    assert visible(d, "#rider-dashboard") is None
    shot(d, "logged-out")

    # A tampered token leads back to the log-in page with its message.
    log_in(d, hub, name, PASSWORD, dashboard="rider")
    changed = d.execute_script(TAMPER_JS)
    assert changed >= 1, f"no JWT found in localStorage to tamper with: {local_storage(d)}"
    d.refresh()
    wait_for(d, lambda x: "#/login" in x.current_url and visible(x, "#login-form"), 15,
             f"a tampered token did not lead to #/login (at {d.current_url})")
    wait_for(d, lambda x: message_text(x, "#login-message"), 10,
             "#login-message not shown after the tampered token was refused")
    shot(d, "tampered-token")
    browser.assert_no_console_errors()
