#!/usr/bin/python3.11
"""dask_schedulers: Dask on pat (pat.dask.get) against Dask's own threads
and processes schedulers (issue 11 §4, docs/python.md):

1. array: a dask.array computation on float64 blocks (random blocks made
   in the workers, a transpose that moves blocks between workers,
   reductions, a product of two blocks): numpy's work, which releases the
   GIL, so threads are the yardstick;
2. bag: a pure-Python dask.bag pipeline (string work per element, a
   filter, a frequency count): the GIL serialises it under threads.

Variants, measured in one run, interleaved round by round (patbench),
every one with 2 workers: pat.dask.get; scheduler="threads";
scheduler="processes" as Dask runs it by default (a new spawn
ProcessPoolExecutor for every compute call); and "processes, pool kept"
(one ProcessPoolExecutor passed as pool= and reused: Dask's processes
scheduler at its best). pat's executor is kept between calls
(pat._reusable), so its start is paid once, before the rounds.

The caller is a member, as pat's zero-copy path needs: this script starts
a private patd, creates a group and runs itself inside it (`patctl run
... pat-python bench/dask_schedulers.py --inner`); every variant runs in
that member, under pat-python.

Targets (issue 11): pat faster than threads and than both processes
variants on the bag workload; within 1.2x of threads on the array
workload (medians; p90 printed beside them).

Run: /usr/bin/python3.11 bench/dask_schedulers.py [--build-dir build] [--rounds 7]
Writes bench/results/dask_schedulers.json.
"""
import sys
import time

WORKERS = 2
ARRAY_SIDE = 4000
ARRAY_CHUNK = 1000         # 8 MB blocks, 16 of them
BAG_ITEMS = 100_000
BAG_PARTITIONS = 16


def word_of(n):
    """The bag's per-element work: pure Python, about 10 us."""
    text = f"{n:x}" * 12
    return "w" + str(sum(ord(c) * (i % 7) for i, c in enumerate(text)) % 97)


def array_workload():
    import dask.array as da
    x = da.random.RandomState(42).random_sample((ARRAY_SIDE, ARRAY_SIDE), chunks=(ARRAY_CHUNK, ARRAY_CHUNK))
    y = (x + x.T) - x.mean(axis=0)
    return [y.sum(axis=1), (y[:ARRAY_CHUNK, :ARRAY_CHUNK] @ y[:ARRAY_CHUNK, :ARRAY_CHUNK]).trace(), y.std()]


def bag_workload():
    import dask.bag as db
    numbers = db.from_sequence(range(BAG_ITEMS), npartitions=BAG_PARTITIONS)
    words = numbers.map(word_of).filter(lambda w: not w.endswith("3"))
    return [words.frequencies(sort=True), words.count()]


def inner(rounds):
    import concurrent.futures as cf
    import multiprocessing

    import dask
    import numpy as np

    import pat
    import patbench

    assert pat.in_group(), "the caller must be a member (run without --inner)"
    spawn = multiprocessing.get_context("spawn")
    kept_pool = cf.ProcessPoolExecutor(WORKERS, mp_context=spawn)
    schedulers = {
        "pat.dask.get": dict(scheduler=pat.dask.get, num_workers=WORKERS),
        "threads": dict(scheduler="threads", num_workers=WORKERS),
        "processes": dict(scheduler="processes", num_workers=WORKERS),
        "processes, pool kept": dict(scheduler="processes", pool=kept_pool),
    }
    expected = {}

    def run(workload, name, options):
        def sample():
            start = time.perf_counter()
            results = dask.compute(*workload(), **options)
            took = time.perf_counter() - start
            check(workload.__name__, results)
            return took
        return sample

    def check(workload, results):
        # Every scheduler must compute the same thing (the first result of
        # each workload is the reference).
        if workload not in expected:
            expected[workload] = results
            return
        for want, have in zip(expected[workload], results):
            if isinstance(want, (list, tuple)):
                assert list(want) == list(have), workload
            else:
                assert np.allclose(want, have, rtol=1e-9), workload

    for name, options in schedulers.items():  # warm-up: workers started, modules imported
        run(bag_workload, name, options)()
    samples = {}
    for workload in (array_workload, bag_workload):
        label = workload.__name__.split("_")[0]
        print(f"{label} workload", file=sys.stderr, flush=True)
        variants = {name: run(workload, name, options) for name, options in schedulers.items()}
        samples[label] = patbench.interleaved(variants, rounds, patbench.progress(label))
    kept_pool.shutdown()
    return samples


def report(results):
    import patbench
    verdicts = {}
    for workload, title in (("array", f"1. dask.array, {ARRAY_SIDE}x{ARRAY_SIDE} float64 in "
                                       f"{ARRAY_CHUNK}x{ARRAY_CHUNK} blocks"),
                            ("bag", f"2. dask.bag, pure Python, {BAG_ITEMS} items in {BAG_PARTITIONS} partitions")):
        table = results[workload]
        pat_median = table["pat.dask.get"]["median"]
        rows = [[name, f"{s['median']:.3f}", f"{s['p90']:.3f}", f"{s['median'] / pat_median:.2f}"]
                for name, s in table.items()]
        patbench.print_table(f"{title} (s, {WORKERS} workers, median of {table['pat.dask.get']['n']})",
                             ["scheduler", "median s", "p90 s", "x pat's time"], rows)
        over_threads = pat_median / table["threads"]["median"]
        over_processes = pat_median / min(table["processes"]["median"], table["processes, pool kept"]["median"])
        if workload == "array":
            met = over_threads <= 1.2
            print(f"pat / threads: {over_threads:.2f} (target <= 1.2: {patbench.verdict(over_threads, 1.2, False)}); "
                  f"pat / best processes: {over_processes:.2f}")
            verdicts[workload] = {"pat_over_threads": over_threads, "pat_over_processes": over_processes,
                                  "target": "<= 1.2x threads", "met": met}
        else:
            met = over_threads < 1 and over_processes < 1
            print(f"pat / threads: {over_threads:.2f}; pat / best processes: {over_processes:.2f} "
                  f"(target: both < 1: {'met' if met else 'NOT met'})")
            verdicts[workload] = {"pat_over_threads": over_threads, "pat_over_processes": over_processes,
                                  "target": "< 1x threads and < 1x processes", "met": met}
    return verdicts


def outer():
    import patbench
    args, _, start_info, raw = patbench.member_benchmark(__file__, __doc__.split("\n")[0], default_rounds=7)
    results = {workload: {name: patbench.summary(values) for name, values in variants.items()}
               for workload, variants in raw.items()}
    verdicts = report(results)
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("dask_schedulers", {"rounds": args.rounds, "workers": WORKERS,
                                                   "array": [ARRAY_SIDE, ARRAY_CHUNK],
                                                   "bag": [BAG_ITEMS, BAG_PARTITIONS]},
                               {"summary": results, "verdicts": verdicts, "samples": raw}, start_info)


if __name__ == "__main__":
    if "--inner" in sys.argv:
        import patbench
        patbench.print_results(inner(int(sys.argv[sys.argv.index("--rounds") + 1])))
    else:
        outer()
