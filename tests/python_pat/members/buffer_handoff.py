"""Member, two roles, for "a buffer stays valid after its sender exits":

  buffer_handoff.py send CHANNEL     sends an arena buffer (pat.buffer), a
                                     64 MiB numpy array of its own (shared
                                     without a copy), bytes and a memoryview;
                                     prints "sent"; exits at once
  buffer_handoff.py receive CHANNEL  receives them (the sender is gone by
                                     then), checks every byte; prints "ok"
"""
import sys

import numpy as np

import pat


def pattern(n, seed):
    return (np.arange(n, dtype=np.uint64) * 2654435761 + seed).astype(np.uint32)


def send(name):
    channel = pat.Channel(name, "send")
    shared = pat.buffer(1 << 20)
    np.frombuffer(shared, dtype=np.uint32)[:] = pattern((1 << 20) // 4, 1)
    own = pattern(16 << 20, 2)  # 64 MiB in its own mapping: zero-copy
    blob = pattern(32 << 10, 3).tobytes()  # 128 KiB of bytes
    view = memoryview(pattern(64 << 10, 4)).cast("B")  # 256 KiB
    channel.send({"shared": shared, "own": own, "blob": blob, "view": view})
    print("sent", flush=True)
    # Exits with everything still referenced by the queued message: the host
    # drops this member's references, the message keeps the buffers.


def receive(name):
    channel = pat.Channel(name, "receive")
    message = channel.recv_message(timeout=60)
    value = message.load()
    shared = np.frombuffer(value["shared"], dtype=np.uint32)
    assert np.array_equal(shared, pattern((1 << 20) // 4, 1)), "arena buffer"
    assert np.array_equal(value["own"], pattern(16 << 20, 2)), "zero-copy array"
    assert pat.buffer_of(value["own"]).zero_copy, "the array was expected to travel without a copy"
    assert value["blob"] == pattern(32 << 10, 3).tobytes(), "bytes"
    assert bytes(value["view"]) == pattern(64 << 10, 4).tobytes(), "memoryview"
    print(f"ok sender={message.sender}")


if __name__ == "__main__":
    {"send": send, "receive": receive}[sys.argv[1]](sys.argv[2])
