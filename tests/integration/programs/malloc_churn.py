# Run by pat-python, two copies at once in one group (run_test.cc): about a
# second of allocating and freeing objects of many sizes, checking every
# object's contents before dropping it. With one shared program break the two
# heaps would corrupt each other within milliseconds (DESIGN "Rerouted
# syscalls"); each member must keep its own.
import random
import sys
import time

seed = int(sys.argv[1])
rng = random.Random(seed)
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
started = time.monotonic()
deadline = started + seconds
rounds = 0
kept = []
while time.monotonic() < deadline:
    made = []
    for _ in range(200):
        kind = rng.randrange(4)
        n = rng.randrange(1, 5_000)
        if kind == 0:
            made.append(list(range(n)))
        elif kind == 1:
            made.append({i: str(i * seed) for i in range(n // 8 + 1)})
        elif kind == 2:
            made.append(bytearray([seed & 0xFF]) * rng.randrange(1, 300_000))
        else:
            made.append(str(seed) * n)
    for obj in made + kept:
        if isinstance(obj, list):
            assert obj == list(range(len(obj))), "list corrupted"
        elif isinstance(obj, dict):
            assert all(v == str(k * seed) for k, v in obj.items()), "dict corrupted"
        elif isinstance(obj, bytearray):
            assert obj.count(seed & 0xFF) == len(obj), "bytearray corrupted"
        else:
            assert obj == str(seed) * (len(obj) // len(str(seed))), "str corrupted"
    kept = made[::7]  # some survive a round, so frees interleave with allocations
    rounds += 1
# CLOCK_MONOTONIC is system-wide: the test checks that the two runs overlapped.
print(f"churn seed={seed} rounds={rounds} ok started={started:.6f} ended={time.monotonic():.6f}")
