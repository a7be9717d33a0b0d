#!/usr/bin/env python3
# Opens N idle /taxi/ sockets to a hub and prints its resident memory per socket.
# Usage: scripts/idle-sockets.py PORT N PID [USERNAME [GROUP]]  (needs python3-websockets)
import asyncio, json, sys, urllib.request, websockets, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
base = f"http://127.0.0.1:{port}"
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        return json.loads(urllib.request.urlopen(req).read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1]) * 1024
user = sys.argv[4] if len(sys.argv) > 4 else "idle@example.com"
group = sys.argv[5] if len(sys.argv) > 5 else "rider"
post("/api/sign_up/", {"username": user, "password1": "pAssw0rd!", "password2": "pAssw0rd!", "first_name": "I", "last_name": "D", "group": group})
token = post("/api/log_in/", {"username": user, "password": "pAssw0rd!"})["access"]
async def main():
    socks = []
    url = f"ws://127.0.0.1:{port}/taxi/?token={token}"
    for _ in range(100):
        socks.append(await websockets.connect(url, ping_interval=None))
    await asyncio.sleep(1)
    before = rss()
    for i in range(n):
        socks.append(await websockets.connect(url, ping_interval=None))
    await asyncio.sleep(2)
    after = rss()
    print(f"{n} sockets: RSS {before/2**20:.1f} MiB -> {after/2**20:.1f} MiB, {(after-before)/n/1024:.1f} KiB per connection")
    await asyncio.gather(*(s.close() for s in socks))
asyncio.run(main())
