"""Member: TASKS pat.Executor tasks, each carrying a 1 MiB buffer there and
another back; prints the group's RSS (patd's `memory.rss_bytes`) after a
warm-up and at the end, as JSON.

Both kinds of group buffer are exercised: on odd tasks the arrays (the
argument, and the result) are each in a mapping of their own, so they
travel without a copy (pinned pages, kept alive by the sender's export
table until the receiver lets go); on even tasks they are on the heap, so
they are copied into the group's arena."""
import json
import mmap
import sys

import numpy as np

import pat
from pat import _patd

MIB = 1 << 20


def array_of_1_mib(own_mapping):
    if own_mapping:
        return np.frombuffer(mmap.mmap(-1, MIB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), dtype=np.float64)
    return np.empty(MIB // 8)


def touch(array, own_mapping):
    out = array_of_1_mib(own_mapping)
    out[:] = array
    out[0] += 1
    return out


def group_rss(connection):
    return connection.show_group(pat.group())["memory"]["rss_bytes"]


def main(tasks, warmup):
    connection = _patd.Connection()
    figures = {}
    zero_copy = 0
    with pat.Executor(max_workers=2) as executor:
        for i in range(tasks):
            own_mapping = i % 2 == 1
            payload = array_of_1_mib(own_mapping)
            payload[:] = 1.0
            result = executor.submit(touch, payload, own_mapping).result(timeout=60)
            assert result[0] == 2.0 and result.nbytes == MIB
            zero_copy += pat.buffer_of(result).zero_copy
            del result, payload
            if i + 1 == warmup:
                figures["after_warmup"] = group_rss(connection)
        figures["after_all"] = group_rss(connection)
    figures["after_shutdown"] = group_rss(connection)
    figures["zero_copy_results"] = zero_copy
    print(json.dumps(figures))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
