"""Puts real data into a fresh hub for scripts/contract-test and writes copies of
docs/openapi.yaml (as JSON) whose parameters carry those values as examples, so that
schemathesis's examples phase reaches the 200 answers of the routes that need an existing
trip, photo or token, while its other phases still generate values of their own.

Usage: seed.py BASE_URL OUT_DIR  (reads the access tokens from RIDER_TOKEN and DRIVER_TOKEN;
writes OUT_DIR/openapi-rider.json and OUT_DIR/openapi-driver.json). Standard library and
PyYAML (a schemathesis dependency) only: a minimal WebSocket client is enough for three frames.
"""
import base64
import copy
import json
import os
import socket
import struct
import sys
import urllib.parse
import urllib.request
import uuid

import yaml

BASE, OUT = sys.argv[1], sys.argv[2]
TOKENS = {"rider": os.environ["RIDER_TOKEN"], "driver": os.environ["DRIVER_TOKEN"]}
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


class Socket:
    """Just enough of RFC 6455 for a client: masked text frames out, unmasked frames in."""

    def __init__(self, token):
        url = urllib.parse.urlparse(BASE)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /taxi/?token={token} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise SystemExit(f"WebSocket handshake refused: {head!r}")

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise SystemExit("the hub closed the socket")
            data += chunk
        return data

    def send(self, message):
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self):
        """The next text frame's JSON (pings and other control frames are skipped)."""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            if first & 0x0F == 0x1:
                return json.loads(payload)


def reply(sock, kind):
    message = sock.receive()
    if message.get("type") != kind:
        raise SystemExit(f"expected {kind}, got {message}")
    return message["data"]


# A trip the rider requested and the driver started, with one point in its track.
driver = Socket(TOKENS["driver"])
rider = Socket(TOKENS["rider"])
rider.send({"type": "create.trip", "data": {"pick_up_address": "123 Main Street", "drop_off_address": "456 Piney Road",
                                             "pick_up_location": {"lat": 40.7128, "lng": -74.006},
                                             "drop_off_location": {"lat": 40.73, "lng": -73.99}}})
trip_id = reply(rider, "echo.message")["id"]
driver.send({"type": "update.location", "data": {"lat": 40.7128, "lng": -74.006}})
driver.send({"type": "update.trip", "data": {"id": trip_id, "status": "STARTED"}})
while reply(driver, "echo.message").get("id") != trip_id:
    pass
driver.send({"type": "update.location", "data": {"lat": 40.713, "lng": -74.005, "heading": 45, "speed": 5, "accuracy": 8}})
with urllib.request.urlopen(urllib.request.Request(
        f"{BASE}/api/trip/{trip_id}/track/", headers={"Authorization": f"Bearer {TOKENS['rider']}"}), timeout=10) as r:
    if not json.load(r)["points"]:
        # The location may still be on its way to the trip's actor: wait for the rider's copy.
        reply(rider, "trip.location")

# A user with a photo (multipart sign-up).
boundary = uuid.uuid4().hex
fields = {"username": "contract-photo", "password1": "contract-pass-123", "password2": "contract-pass-123",
          "group": "rider"}
body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
                for k, v in fields.items())
body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\n"
         f"Content-Type: image/png\r\n\r\n").encode() + PNG + f"\r\n--{boundary}--\r\n".encode()
request = urllib.request.Request(f"{BASE}/api/sign_up/", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
with urllib.request.urlopen(request, timeout=10) as r:
    photo = json.load(r)["photo"]
photo_name = photo.rsplit("/", 1)[1]

with open(os.path.join(os.path.dirname(__file__), "../../docs/openapi.yaml")) as f:
    document = yaml.safe_load(f)


def with_example(doc, path, name, value):
    """Gives the GET operation's parameter `name` the example `value` (inlining a $ref)."""
    operation = doc["paths"][path]["get"]
    for index, parameter in enumerate(operation.get("parameters", [])):
        if "$ref" in parameter:
            parameter = copy.deepcopy(doc["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]])
        if parameter["name"] == name:
            parameter = dict(parameter, example=value)
            operation["parameters"][index] = parameter
            return
    raise SystemExit(f"no parameter {name}")


for role, token in TOKENS.items():
    seeded = copy.deepcopy(document)
    with_example(seeded, "/api/trip/{trip_id}/", "trip_id", trip_id)
    with_example(seeded, "/api/trip/{trip_id}/track/", "trip_id", trip_id)
    with_example(seeded, "/media/photos/{name}", "name", photo_name)
    with_example(seeded, "/taxi/", "token", token)
    with open(os.path.join(OUT, f"openapi-{role}.json"), "w") as f:
        json.dump(seeded, f)
print(f"seeded: trip {trip_id} (started, with a track), photo {photo_name}")
