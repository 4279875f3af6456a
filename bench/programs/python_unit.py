# One unit of CPU-bound pure Python for bench/python_members.py: N rounds of
# cpu_work.py's loop. Prints the file this interpreter runs from (inside a
# group: which build the loader chose), the CPU seconds the unit took in this
# process (time.process_time: start-up and time spent waiting for a CPU
# excluded), and the result, so no work can be skipped.
import os
import sys
import time

from cpu_work import spin  # beside this file: the script's directory is sys.path[0]


def main():
    rounds = int(sys.argv[1])
    start = time.process_time()
    result = spin(rounds)
    took = time.process_time() - start
    print(os.readlink("/proc/self/exe"), f"{took:.6f}", result)


if __name__ == "__main__":
    main()
