"""Member: the Python side of the exchange with programs/buffer_echo (C++).

  cpp_exchange.py REQUESTS REPLIES

Sends an arena buffer (pat.buffer) and a numpy array of its own pages
(shared without a copy) as raw messages; checks that the C++ member saw them
at the same address and summed them right, and that the buffers it made
arrive here with every value doubled. Prints "ok"."""
import re
import sys

import numpy as np

import pat
import _pat


def exchange(requests, replies, buffer, values):
    requests.send_raw(b"double", [buffer], timeout=60)
    text, buffers, sender = replies.recv_raw(timeout=60)
    fields = dict(re.findall(r"(\w+)=(\S+)", text.decode()))
    assert int(fields["sum"]) == int(values.sum()), (fields, int(values.sum()))
    assert int(fields["address"], 16) == buffer.address, (fields, hex(buffer.address))
    doubled = np.frombuffer(buffers[0], dtype=np.uint64)
    assert np.array_equal(doubled, values * 2), "the C++ member's buffer"
    assert sender != 0
    return int(fields["zero_copy"])


def main(requests_name, replies_name):
    requests = pat.Channel(requests_name, "send")
    replies = pat.Channel(replies_name, "receive")
    arena = pat.buffer(1 << 20)
    values = np.frombuffer(arena, dtype=np.uint64)
    values[:] = np.arange(values.size, dtype=np.uint64)
    assert exchange(requests, replies, arena, values) == 0
    own = np.arange(8 << 20, dtype=np.uint64) * 3  # 64 MiB of this member's own pages
    shared = _pat.Buffer.share(own)  # kept alive with `own` until the reply is back
    assert shared.zero_copy
    assert exchange(requests, replies, shared, own) == 1
    requests.send_raw(b"bye", timeout=60)
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
