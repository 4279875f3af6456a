"""A Python target for the attach tests: Debian's /usr/bin/python3.11 with a
thread that counts, a dict it keeps, and a Unix socket answering one-line
commands: count, put KEY VALUE, get KEY, pid, work N (allocates and sums N
MiB through numpy-free lists), exit CODE.

    python3.11 attach_server.py SOCKET_PATH
"""
import os
import socket
import sys
import threading
import time

counter = 0
store = {}
lock = threading.Lock()


def count():
    global counter
    while True:
        with lock:
            counter += 1
        time.sleep(0.001)


def answer(line):
    words = line.split()
    if not words:
        return "empty"
    if words[0] == "count":
        with lock:
            return f"count {counter}"
    if words[0] == "put":
        store[words[1]] = words[2]
        return "ok"
    if words[0] == "get":
        return f"value {store.get(words[1], '-')}"
    if words[0] == "pid":
        return f"pid {os.getpid()} threads {threading.active_count()}"
    if words[0] == "work":
        blocks = [bytearray(1 << 20) for _ in range(int(words[1]))]
        for b in blocks:
            b[::4096] = b"\x01" * len(b[::4096])
        return f"work {sum(sum(b[::4096]) for b in blocks)}"
    if words[0] == "exit":
        os._exit(int(words[1]))
    return "unknown"


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    threading.Thread(target=count, daemon=True).start()
    os.write(3, b"ready\n")
    while True:
        client, _ = server.accept()
        with client:
            data = b""
            while not data.endswith(b"\n"):
                chunk = client.recv(4096)
                if not chunk:
                    break
                data += chunk
            client.sendall((answer(data.decode().strip()) + "\n").encode())


main()
