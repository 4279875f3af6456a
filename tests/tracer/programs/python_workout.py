# Run by /usr/bin/python3.11 as a pat member: the standard library parts that
# stress a shared address space (threads, fork, vfork+exec, brk-heavy malloc).
import hashlib
import json
import multiprocessing
import ssl
import subprocess
import sys
import threading


def square(x):
    return x * x


def main():
    data = json.loads(json.dumps({"a": [1, 2, 3], "b": {"c": "d"}}))
    assert data["b"]["c"] == "d"

    ctx = ssl.create_default_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert hashlib.sha256(b"pat").hexdigest().startswith("68d753f0")

    results = []
    def work(n):
        results.append(sum(i * i for i in range(n)))
    threads = [threading.Thread(target=work, args=(20000,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4

    out = subprocess.run(["/bin/echo", "from-child"], capture_output=True, text=True, check=True).stdout
    assert out == "from-child\n", out

    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(square, range(10)) == [x * x for x in range(10)]

    keep = []
    for i in range(200000):  # lots of small objects: the brk heap grows and shrinks
        keep.append(bytearray(i % 512))
        if len(keep) > 5000:
            del keep[:2500]
    del keep

    print("python ok", sys.version_info[:2] == (3, 11))


if __name__ == "__main__":
    main()
