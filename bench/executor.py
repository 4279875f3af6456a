#!/usr/bin/python3.11
"""executor: pat.Executor against its peers (issue 5, docs/python.md):

1. return: a worker makes a 256 MiB numpy array (numpy.ones) and returns it;
   timed from submit() until the caller holds the array (making it is part
   of every variant's time, and varies a lot from round to round on these
   machines: first touch of fresh memory, transparent huge pages);
2. argument: the caller's 256 MiB array is passed to a worker that sums it;
   timed from submit() until the sum is back. 1 and 2 alternate, round by
   round, in one interleaved run (issue 11 §3: an argument round following
   a return round used to pay for the returned array's release);
3. round trip of a trivial task (submit(noop, i).result(), mean of 200);
4. a CPU-bound map (8 pure-Python calls of about 0.1 s) with 2 workers
   against 1: the speed-up.

Peers, all measured in one run, interleaved (patbench): pat.Executor;
concurrent.futures.ProcessPoolExecutor; multiprocessing.shared_memory used
by hand (ProcessPoolExecutor workers, the array's bytes in a SharedMemory
segment: the worker makes it and fills it (1), or the caller copies its
array in (2); only the segment's name is pickled); ThreadPoolExecutor, the
physical limit (a reference in one address space). shared_memory has no
role in 3 and 4 (no data), so it is not run there.

The caller is a member, as pat.Executor's zero-copy path needs: this script
starts a private patd, creates a group and runs itself inside it
(`patctl run ... pat-python bench/executor.py --inner`), where every peer
runs too, under the same interpreter (pat-python; ProcessPoolExecutor's
workers are pat-python processes outside the group). For context, the
threads of 1 and 2 also run in an ordinary /usr/bin/python3.11 process
outside pat ("native threads"); the verdicts compare with the threads in
the member.

Targets (issue 11): 1 and 2 at least 10x faster than ProcessPoolExecutor
and within 1.2x of ThreadPoolExecutor at the median and at p90; 3 at most a
quarter of ProcessPoolExecutor's time and no slower than
ThreadPoolExecutor's; 4 at least 1.9x one worker's speed.

Run: /usr/bin/python3.11 bench/executor.py [--build-dir build] [--rounds 5]
Writes bench/results/executor.json and plots it (bench/executor_plot.py)
into bench/results/executor.png.
"""
import concurrent.futures as cf
import os
import subprocess
import sys
import time

ARRAY_BYTES = 256 << 20
ROUND_TRIPS = 200
CPU_CALLS = 8

# --- the tasks: module level, so that every executor's workers import them ---


def make_array(nbytes):
    import numpy as np
    return np.ones(nbytes // 8)


def total(array):
    return float(array.sum())


def noop(x):
    return x


def cpu_bound(n):
    return sum(i * i % 7 for i in range(n))


def make_array_in_shm(nbytes):
    """shared_memory by hand, worker side of 1: the result is made in a
    segment; only its name goes back."""
    import numpy as np
    from multiprocessing import shared_memory
    segment = shared_memory.SharedMemory(create=True, size=nbytes)
    array = np.ndarray((nbytes // 8,), dtype=np.float64, buffer=segment.buf)
    array[:] = 1.0
    del array
    name = segment.name
    segment.close()
    return name


def total_in_shm(name, count):
    """shared_memory by hand, worker side of 2."""
    import numpy as np
    from multiprocessing import shared_memory
    segment = shared_memory.SharedMemory(name=name)
    array = np.ndarray((count,), dtype=np.float64, buffer=segment.buf)
    result = float(array.sum())
    del array
    segment.close()
    return result


# --- inside the member: the measurements ---------------------------------------


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def return_array_variants(executors, shm_pool):
    def through(executor):
        def sample():
            start = time.perf_counter()
            array = executor.submit(make_array, ARRAY_BYTES).result()
            took = time.perf_counter() - start
            assert array.nbytes == ARRAY_BYTES and array[-1] == 1.0
            return took
        return sample

    def by_hand():
        import numpy as np
        from multiprocessing import shared_memory
        start = time.perf_counter()
        name = shm_pool.submit(make_array_in_shm, ARRAY_BYTES).result()
        segment = shared_memory.SharedMemory(name=name)
        array = np.ndarray((ARRAY_BYTES // 8,), dtype=np.float64, buffer=segment.buf)
        took = time.perf_counter() - start
        assert array[-1] == 1.0
        del array
        segment.close()
        segment.unlink()
        return took

    variants = {name: through(executor) for name, executor in executors.items()}
    variants["shared_memory by hand"] = by_hand
    return variants


def argument_variants(executors, shm_pool, array):
    expected = float(array.sum())

    def through(executor):
        def sample():
            start = time.perf_counter()
            result = executor.submit(total, array).result()
            took = time.perf_counter() - start
            assert result == expected
            return took
        return sample

    def by_hand():
        import numpy as np
        from multiprocessing import shared_memory
        start = time.perf_counter()
        segment = shared_memory.SharedMemory(create=True, size=array.nbytes)
        np.ndarray(array.shape, dtype=array.dtype, buffer=segment.buf)[:] = array
        result = shm_pool.submit(total_in_shm, segment.name, array.size).result()
        segment.close()
        segment.unlink()
        took = time.perf_counter() - start
        assert result == expected
        return took

    variants = {name: through(executor) for name, executor in executors.items()}
    variants["shared_memory by hand"] = by_hand
    return variants


def round_trip_variants(executors):
    def through(executor):
        def sample():
            start = time.perf_counter()
            for i in range(ROUND_TRIPS):
                executor.submit(noop, i).result()
            return (time.perf_counter() - start) / ROUND_TRIPS
        return sample
    return {name: through(executor) for name, executor in executors.items()}


def cpu_map_variants(pairs, n):
    variants = {}
    for name, (one, two) in pairs.items():
        variants[f"{name}, 1 worker"] = lambda e=one: timed(lambda: list(e.map(cpu_bound, [n] * CPU_CALLS)))
        variants[f"{name}, 2 workers"] = lambda e=two: timed(lambda: list(e.map(cpu_bound, [n] * CPU_CALLS)))
    return variants


def calibrate_cpu_call(target_seconds=0.1):
    n = 100_000
    while True:
        took = timed(lambda: cpu_bound(n))
        if took >= target_seconds / 4:
            return max(1, int(n * target_seconds / took))
        n *= 2


def inner(rounds, only_threads):
    """Runs in the member (or, with only_threads, in a plain process)."""
    import numpy as np

    import patbench

    samples = {}
    threads = cf.ThreadPoolExecutor(2)
    if only_threads:
        array = np.ones(ARRAY_BYTES // 8)
        samples["return"] = patbench.interleaved(
            {"native threads": lambda: timed(lambda: threads.submit(make_array, ARRAY_BYTES).result())}, rounds)
        samples["argument"] = patbench.interleaved(
            {"native threads": lambda: timed(lambda: threads.submit(total, array).result())}, rounds)
        threads.shutdown()
        return samples

    import multiprocessing

    import pat
    assert pat.in_group(), "the caller must be a member (run without --inner)"
    # spawn, not Linux's default fork: fork in a member copies the whole
    # group's address space (README "Known limits").
    spawn = multiprocessing.get_context("spawn")
    pat_executor = pat.Executor(2)
    processes = cf.ProcessPoolExecutor(2, mp_context=spawn)
    shm_pool = cf.ProcessPoolExecutor(1, mp_context=spawn)
    executors = {"pat.Executor": pat_executor, "ProcessPoolExecutor": processes, "ThreadPoolExecutor": threads}
    for executor in [*executors.values(), shm_pool]:  # start every worker
        list(executor.map(noop, range(8)))

    print("1 and 2, alternating: return a 256 MiB array; pass one to a worker that sums it", file=sys.stderr,
          flush=True)
    array = np.ones(ARRAY_BYTES // 8)
    returns = return_array_variants(executors, shm_pool)
    arguments = argument_variants(executors, shm_pool, array)
    both = {}
    for name in returns:  # each variant's return round, then its argument round
        both[f"return|{name}"] = returns[name]
        both[f"argument|{name}"] = arguments[name]
    alternating = patbench.interleaved(both, rounds, patbench.progress("return/argument"))
    for bench in ("return", "argument"):
        samples[bench] = {key.split("|", 1)[1]: values for key, values in alternating.items()
                          if key.startswith(bench + "|")}
    del array
    shm_pool.shutdown()
    print("3. round trip of a trivial task", file=sys.stderr, flush=True)
    samples["round_trip"] = patbench.interleaved(round_trip_variants(executors), rounds,
                                                 patbench.progress("round trip"))
    print("4. CPU-bound map, 2 workers against 1", file=sys.stderr, flush=True)
    n = calibrate_cpu_call()
    pairs = {"pat.Executor": (pat.Executor(1), pat_executor),
             "ProcessPoolExecutor": (cf.ProcessPoolExecutor(1, mp_context=spawn), processes),
             "ThreadPoolExecutor": (cf.ThreadPoolExecutor(1), threads)}
    for one, _ in pairs.values():
        list(one.map(noop, range(4)))
    samples["cpu_map"] = patbench.interleaved(cpu_map_variants(pairs, n), rounds, patbench.progress("cpu map"))
    samples["cpu_map_calls"] = {"n": n, "calls": CPU_CALLS}
    for one, two in pairs.values():
        one.shutdown()
        two.shutdown()
    return samples


# --- outside: a private patd, the member, the table, the JSON, the plot ---------


def summarise(samples):
    import patbench
    return {name: patbench.summary(values) for name, values in samples.items()}


def median_of(results, bench, variant):
    return results[bench][variant]["median"]


def report(results, native):
    import patbench
    verdicts = {}
    for bench, title, unit, scale in (("return", "1. a worker returns a 256 MiB numpy array", "ms", 1e3),
                                      ("argument", "2. a 256 MiB array passed to a worker that sums it", "ms", 1e3),
                                      ("round_trip", "3. round trip of a trivial task", "us", 1e6)):
        table = dict(results[bench])
        if bench in native:
            table["native threads (python3.11, outside pat)"] = native[bench]["native threads"]
        base_processes = median_of(results, bench, "ProcessPoolExecutor")
        base_threads = median_of(results, bench, "ThreadPoolExecutor")
        rows = [[name, f"{s['median'] * scale:.2f}", f"{s['p90'] * scale:.2f}",
                 f"{base_processes / s['median']:.1f}", f"{s['median'] / base_threads:.2f}"]
                for name, s in table.items()]
        patbench.print_table(f"{title} ({unit}, median of {table['pat.Executor']['n']})",
                             ["variant", unit, f"p90 {unit}", "x faster than processes", "x threads"], rows)
        pat_median = median_of(results, bench, "pat.Executor")
        versus_threads = pat_median / base_threads
        if bench == "round_trip":
            ratio = pat_median / base_processes
            verdicts[bench] = {"pat_over_processes": ratio, "pat_over_threads": versus_threads,
                               "target": "<= 0.25x processes, <= 1x threads",
                               "met": ratio <= 0.25 and versus_threads <= 1.0}
            print(f"pat / ProcessPoolExecutor: {ratio:.3f} (target <= 0.25: {patbench.verdict(ratio, 0.25, False)}); "
                  f"pat / ThreadPoolExecutor: {versus_threads:.2f} "
                  f"(target <= 1: {patbench.verdict(versus_threads, 1.0, False)})")
        else:
            faster = base_processes / pat_median
            p90_versus_threads = results[bench]["pat.Executor"]["p90"] / results[bench]["ThreadPoolExecutor"]["p90"]
            verdicts[bench] = {"processes_over_pat": faster, "pat_over_threads": versus_threads,
                               "pat_over_threads_p90": p90_versus_threads,
                               "target": ">= 10x faster than processes, <= 1.2x threads at the median and p90",
                               "met": faster >= 10 and versus_threads <= 1.2 and p90_versus_threads <= 1.2}
            print(f"ProcessPoolExecutor / pat: {faster:.1f}x (target >= 10: {patbench.verdict(faster, 10, True)}); "
                  f"pat / ThreadPoolExecutor: median {versus_threads:.2f} "
                  f"(target <= 1.2: {patbench.verdict(versus_threads, 1.2, False)}), p90 {p90_versus_threads:.2f} "
                  f"(target <= 1.2: {patbench.verdict(p90_versus_threads, 1.2, False)})")
    rows = []
    cpu = results["cpu_map"]
    for name in ("pat.Executor", "ProcessPoolExecutor", "ThreadPoolExecutor"):
        one = cpu[f"{name}, 1 worker"]["median"]
        two = cpu[f"{name}, 2 workers"]["median"]
        rows.append([name, f"{one:.3f}", f"{two:.3f}", f"{one / two:.2f}"])
        if name == "pat.Executor":
            speedup = one / two
    patbench.print_table(f"4. CPU-bound map, {CPU_CALLS} calls (s, median of {cpu['pat.Executor, 1 worker']['n']})",
                         ["executor", "1 worker", "2 workers", "speed-up"], rows)
    verdicts["cpu_map"] = {"speedup": speedup, "target": ">= 1.9", "met": speedup >= 1.9}
    print(f"pat.Executor speed-up, 2 workers / 1: {speedup:.2f} (target >= 1.9: {patbench.verdict(speedup, 1.9, True)})")
    return verdicts


def outer():
    import patbench
    args, _, start_info, raw = patbench.member_benchmark(__file__, __doc__.split("\n")[0], default_rounds=5)
    here = os.path.abspath(__file__)
    native_run = subprocess.run([patbench.DEBIAN_PYTHON, here, "--inner", "--only-threads", "--rounds",
                                 str(args.rounds)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                                check=True, cwd=os.path.dirname(here))
    native_raw = patbench.results_in(native_run.stdout)
    cpu_calls = raw.pop("cpu_map_calls")
    results = {bench: summarise(samples) for bench, samples in raw.items()}
    native = {bench: summarise(samples) for bench, samples in native_raw.items()}
    verdicts = report(results, native)
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("executor", {"rounds": args.rounds, "array_bytes": ARRAY_BYTES,
                                            "round_trips_per_sample": ROUND_TRIPS, "cpu_map": cpu_calls},
                               {"member": results, "native": native, "verdicts": verdicts,
                                "samples": {"member": raw, "native": native_raw}}, start_info)
        subprocess.run([patbench.DEBIAN_PYTHON, os.path.join(os.path.dirname(here), "executor_plot.py")],
                       check=True)


if __name__ == "__main__":
    if "--inner" in sys.argv:
        rounds = int(sys.argv[sys.argv.index("--rounds") + 1])
        import patbench
        patbench.print_results(inner(rounds, "--only-threads" in sys.argv))
    else:
        outer()
