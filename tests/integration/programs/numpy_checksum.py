# Run by pat-python as a member (run_test.cc): numpy's C extension, its
# allocations (large ones through mmap, small ones through the member's brk
# heap) and a LAPACK call, printing values the test knows in advance.
import numpy as np

squares = np.arange(1_000_000, dtype=np.int64)
print("sum_of_squares", int((squares * squares).sum()))

rng = np.random.default_rng(12345)
matrix = rng.random((300, 300))
spd = matrix @ matrix.T + 300 * np.eye(300)  # symmetric positive definite
solution = np.linalg.solve(spd, spd @ np.ones(300))
print("solve_ok", bool(np.allclose(solution, 1.0)))

blocks = [np.full(size, size % 251, dtype=np.uint8) for size in range(1, 20_000, 97)]
print("blocks_checksum", sum(int(block.sum()) for block in blocks))
