# Run by pat-python as a member (run_test.cc): the standard library parts that
# lean on a whole process (OpenSSL's global state, threads, fork, vfork+exec),
# each printing one line the test compares exactly.
import hashlib
import json
import multiprocessing
import ssl
import subprocess
import threading


def square(x):
    return x * x


def main():
    print("json", json.dumps(json.loads('{"b": {"c": "d"}, "a": [1, 2, 3]}'), sort_keys=True))

    context = ssl.create_default_context()
    print("ssl", context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname,
          hashlib.sha256(b"pat").hexdigest()[:16])

    sums = []
    lock = threading.Lock()

    def work(n):
        total = sum(i * i for i in range(n))
        with lock:
            sums.append(total)

    threads = [threading.Thread(target=work, args=(10_000 * (i + 1),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("threads", sorted(sums))

    echoed = subprocess.run(["/bin/echo", "from-echo"], capture_output=True, text=True, check=True)
    print("subprocess", echoed.stdout.strip())

    with multiprocessing.get_context("fork").Pool(2) as pool:
        print("pool", pool.map(square, range(10)))

    # spawn re-runs sys.executable (pat-python) as fresh processes.
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        print("spawn pool", sum(pool.map(square, range(100))))


if __name__ == "__main__":
    main()
