# One unit of CPU-bound pure Python for bench/python_members.py: N rounds of
# integer arithmetic (cpu_work.py's loop). Prints the file this interpreter
# runs from (inside a group: which build the loader chose), the CPU seconds
# the unit took in this process (time.process_time: start-up excluded,
# waiting for a CPU excluded), and the result, so no work can be skipped.
import os
import sys
import time


def spin(rounds):
    x = 0
    for i in range(rounds):
        x = (x * 1103515245 + 12345 + i) & 0xFFFFFFFF
    return x


def main():
    rounds = int(sys.argv[1])
    start = time.process_time()
    result = spin(rounds)
    took = time.process_time() - start
    print(os.readlink("/proc/self/exe"), f"{took:.6f}", result)


if __name__ == "__main__":
    main()
