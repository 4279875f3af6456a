# CPU-bound pure Python for bench/cpu_members.py: N rounds of integer
# arithmetic (a linear congruential step), in T threads of this interpreter
# (default 1). Prints each thread's result, so no work can be skipped.
import sys
import threading


def spin(rounds):
    x = 0
    for i in range(rounds):
        x = (x * 1103515245 + 12345 + i) & 0xFFFFFFFF
    return x


def main():
    rounds = int(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    results = [None] * threads

    def work(index):
        results[index] = spin(rounds)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(*results)


if __name__ == "__main__":
    main()
