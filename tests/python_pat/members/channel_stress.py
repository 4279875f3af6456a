"""Member, for the 4-producer, 4-consumer channel stress test:

  channel_stress.py produce CHANNEL ID COUNT   COUNT messages, some with a
                                               buffer; prints "produced"
  channel_stress.py consume CHANNEL            until the channel is closed;
                                               prints the received ids as JSON
  channel_stress.py close CHANNEL              attaches as a sender, prints
                                               "attached", closes the channel
                                               when a line arrives on stdin
Every message carries (producer, sequence) and a checksum of its payload.
The closer is attached before any producer starts and closes only after
all have finished: a channel whose senders all ended without closing it
would give its receivers PeerDied instead.
"""
import json
import sys
import zlib

import numpy as np

import pat


def payload(producer, sequence):
    if sequence % 3 == 0:
        return np.full(1024 * (1 + sequence % 64), producer * 100003 + sequence, dtype=np.int64)
    if sequence % 3 == 1:
        return bytes([producer]) * (sequence % 5000)
    return f"{producer}:{sequence}"


def checksum(value):
    data = value.tobytes() if isinstance(value, np.ndarray) else value.encode() if isinstance(value, str) else value
    return zlib.crc32(data)


def produce(name, producer, count):
    channel = pat.Channel(name, "send", capacity=16, max_bytes=1024, max_buffers=4)
    for sequence in range(count):
        value = payload(producer, sequence)
        channel.send((producer, sequence, checksum(value), value), timeout=120)
    print("produced")


def consume(name):
    channel = pat.Channel(name, "receive", capacity=16, max_bytes=1024, max_buffers=4)
    received = []
    for producer, sequence, expected, value in channel:
        if checksum(value) != expected:
            raise AssertionError(f"message {producer}:{sequence} arrived damaged")
        received.append([producer, sequence])
    print(json.dumps(received))


def close(name):
    channel = pat.Channel(name, "send", capacity=16, max_bytes=1024, max_buffers=4)
    print("attached", flush=True)
    sys.stdin.readline()
    channel.close()
    print("closed")


if __name__ == "__main__":
    command, name = sys.argv[1], sys.argv[2]
    if command == "produce":
        produce(name, int(sys.argv[3]), int(sys.argv[4]))
    elif command == "consume":
        consume(name)
    else:
        close(name)
