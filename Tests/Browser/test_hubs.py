"""Several hubs as one: the page gets their origins in `?hubs=` and uses the next
one when the current hub cannot be reached or its socket drops, keeping its token and resuming.

These run against ordinary single hubs: a closed port before a live hub, and one hub reached
through a TCP forwarder (the "first node") and directly (the "second node")."""
import re
import socket
import threading

import pytest

from conftest import (NYC, _free_port, advance, attr, new_user, open_requested, request_trip,
                      run_hub, start_simulation, status_of, wait_connected, wait_for,
                      wait_status)

SIZE = (1280, 800)


def closed_port():
    """A loopback port nothing listens on."""
    return _free_port()


class Forwarder:
    """A TCP forwarder on a loopback port to `target_port`: a second address of one hub.

    `freeze()` drops what the hub sends (the hub believes it delivered it), `kill()` closes the
    listener and every connection, as a dead node would."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.frozen = False
        self.alive = True
        self.sockets = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.alive:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source, target, from_hub):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_hub and self.frozen:
                    continue
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self):
        self.frozen = True

    def kill(self):
        self.alive = False
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


def shown_hub(driver):
    return attr(driver, "#connection-state", "data-hub")


def test_closed_first_hub(hub, browser, shot):
    """`?hubs=<closed port>,<hub>`: the rider signs up, logs in, requests a trip and follows it
    through the live hub."""
    dead = f"http://127.0.0.1:{closed_port()}"
    browser.expect_console_error(re.escape(dead.removeprefix("http://")))
    query = f"?hubs={dead},{hub.base_url}"
    rider = new_user(browser, hub, SIZE, "rider", "rider", location=NYC, page_query=query)
    driver = new_user(browser, hub, SIZE, "driver", "driver", location=(40.7140, -74.0050))
    wait_connected(rider)
    wait_connected(driver)
    assert shown_hub(rider) == hub.base_url, f"the rider is not on the live hub: {shown_hub(rider)!r}"
    assert hub.base_url.removeprefix("http://") in attr(rider, "#connection-state", "textContent")
    shot(rider, "rider-on-second-hub")

    start_simulation(driver, speed=25)
    trip_id, _ = request_trip(rider, hub)
    open_requested(driver, trip_id)
    advance(driver)  # accept
    wait_status(rider, status_of(driver), trip_id, 15)
    shot(rider, "rider-trip-accepted")
    browser.assert_no_console_errors()


@pytest.fixture
def cors_hub():
    """A hub whose page may call it from its forwarded address: the page is served by the hub's
    own origin and calls the forwarder's (another origin), as a page served by one cluster node
    calls another."""
    port = _free_port()
    yield from run_hub(["--cors-origins", f"http://127.0.0.1:{port}"], "hub-cors.log", port=port)


def test_switches_hub_and_resumes(cors_hub, browser, shot):
    """`?hubs=<forwarder>,<hub>`: the rider works through the forwarder; it stops passing the
    hub's frames while the driver accepts, then dies. The rider moves to the second address,
    keeps its session and resumes: it gets the accept it missed, then live events."""
    hub = cors_hub
    browser.origins.append(hub.base_url)
    forwarder = Forwarder(hub.port)
    browser.expect_console_error(re.escape(forwarder.origin.removeprefix("http://")))
    try:
        query = f"?hubs={forwarder.origin},{hub.base_url}"
        rider = new_user(browser, hub, SIZE, "rider", "rider", location=NYC, page_query=query)
        driver = new_user(browser, hub, SIZE, "driver", "driver", location=(40.7140, -74.0050))
        wait_connected(rider)
        wait_connected(driver)
        assert shown_hub(rider) == forwarder.origin, \
            f"the rider did not start on the first hub: {shown_hub(rider)!r}"
        start_simulation(driver, speed=25)
        trip_id, _ = request_trip(rider, hub)
        open_requested(driver, trip_id)
        shot(rider, "rider-on-first-hub")

        forwarder.freeze()
        accepted = advance(driver)
        assert accepted != "REQUESTED"
        assert status_of(rider) == "REQUESTED", "the frozen forwarder let the accept through"
        forwarder.kill()

        wait_for(rider, lambda d: shown_hub(d) == hub.base_url, 15,
                 f"the rider did not switch to the second hub (is on {shown_hub(rider)!r})")
        wait_connected(rider, 20)
        wait_status(rider, accepted, trip_id, 15)  # the missed accept, through resume
        shot(rider, "rider-resumed-on-second-hub")
        moved = advance(driver)                    # and live events on the new hub
        wait_status(rider, moved, trip_id, 15)
        assert attr(rider, "#connection-state", "data-state") == "connected"
        assert rider.execute_script("return sessionStorage.getItem('taxihub.hub')") == hub.base_url
        browser.assert_no_console_errors()
    finally:
        forwarder.kill()
