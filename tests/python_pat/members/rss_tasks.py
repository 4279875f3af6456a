"""Member: TASKS pat.Executor tasks, each carrying a 1 MiB buffer there and
another back; prints the group's RSS (patd's `memory.rss_bytes`) after a
warm-up and at the end, as JSON."""
import json
import sys

import numpy as np

import pat
from pat import _patd


def touch(array):
    out = np.empty_like(array)
    out[:] = array
    out[0] += 1
    return out


def group_rss(connection):
    return connection.show_group(pat.group())["memory"]["rss_bytes"]


def main(tasks, warmup):
    connection = _patd.Connection()
    payload = np.ones((1 << 20) // 8)
    figures = {}
    with pat.Executor(max_workers=2) as executor:
        for i in range(tasks):
            result = executor.submit(touch, payload).result(timeout=60)
            assert result[0] == 2.0 and result.nbytes == 1 << 20
            del result
            if i + 1 == warmup:
                figures["after_warmup"] = group_rss(connection)
        figures["after_all"] = group_rss(connection)
    figures["after_shutdown"] = group_rss(connection)
    print(json.dumps(figures))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
