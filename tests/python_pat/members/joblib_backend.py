"""joblib's "pat" backend (pat.joblib), as a member or, with --outside, from
a process that is not one: registration by `import pat` alone, results
equal to joblib's sequential ones (plain functions, lambdas and functions
of this script), exceptions, numpy arguments and results by reference
(member), and scikit-learn's n_jobs on pat: a RandomForestClassifier and
cross_val_score give what they give sequentially. Prints "ok" last; any
failure raises."""
import os
import sys

import numpy as np

import pat  # before joblib: the backend must register on joblib's import

assert "joblib" not in sys.modules, "pat must not import joblib itself"
import joblib  # noqa: E402

OUTSIDE = "--outside" in sys.argv


def square(x, plus=0):
    return x * x + plus


def whoami(_):
    return os.getpid()


def address_and_sum(array):
    return array.__array_interface__["data"][0], float(array.sum())


def make(n):
    return np.full(n, 3.0)


def explode(x):
    if x == 3:
        raise ValueError(f"no {x}")
    return x


def tasks_run(executor):
    """How many tasks ``executor`` took so far (its next task id, minus
    the one this call uses up)."""
    return next(executor._task_ids) - 1


def check_plain_calls():
    expected = [square(i, plus=1) for i in range(40)]
    with joblib.parallel_backend("pat", n_jobs=2):
        assert joblib.Parallel()(joblib.delayed(square)(i, plus=1) for i in range(40)) == expected
        assert joblib.Parallel()(joblib.delayed(lambda x: x + 1)(i) for i in range(10)) == list(range(1, 11))
        offset = 5
        assert joblib.Parallel()(joblib.delayed(lambda x: x + offset)(i) for i in range(3)) == [5, 6, 7]
        pids = set(joblib.Parallel(batch_size=1)(joblib.delayed(whoami)(i) for i in range(8)))
        assert os.getpid() not in pids, "the calls ran in the caller"
        try:
            joblib.Parallel(batch_size=1)(joblib.delayed(explode)(i) for i in range(8))
            raise AssertionError("no exception")
        except ValueError as error:
            assert str(error) == "no 3", error
        # The executor survives an exception: the next call runs.
        assert joblib.Parallel()(joblib.delayed(square)(i) for i in range(4)) == [0, 1, 4, 9]
    with joblib.parallel_backend("pat", n_jobs=1):  # joblib's sequential backend, in the caller
        assert set(joblib.Parallel()(joblib.delayed(whoami)(i) for i in range(3))) == {os.getpid()}
    print("plain calls, lambdas and exceptions: same as sequential", flush=True)


def check_by_reference():
    big = np.arange(8 << 20, dtype=np.float64)  # 64 MiB: its own mapping, shared without a copy
    with joblib.parallel_backend("pat", n_jobs=2):
        seen = joblib.Parallel()(joblib.delayed(address_and_sum)(big) for _ in range(2))
        made = joblib.Parallel()(joblib.delayed(make)(8 << 20) for _ in range(2))
    assert all(total == float(big.sum()) for _, total in seen)
    assert all(array.shape == (8 << 20,) and float(array.sum()) == 3.0 * (8 << 20) for array in made)
    if OUTSIDE:
        print("numpy arguments and results: copied once (caller outside a group)", flush=True)
        return
    here = big.__array_interface__["data"][0]
    assert all(address == here for address, _ in seen), "the argument was copied"
    assert all(pat.buffer_of(array) is not None and pat.buffer_of(array).zero_copy for array in made), \
        "a result was copied"
    print("numpy arguments and results: by reference", flush=True)


def check_scikit_learn():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    X, y = make_classification(n_samples=600, n_features=20, n_informative=8, random_state=0)
    sequential_forest = RandomForestClassifier(n_estimators=24, random_state=0).fit(X, y)
    sequential_scores = cross_val_score(DecisionTreeClassifier(random_state=0), X, y, cv=4)
    with joblib.parallel_backend("pat", n_jobs=2):
        executor = pat.joblib._executors.current()  # the earlier checks' (same n_jobs): reused
        before = tasks_run(executor)
        forest = RandomForestClassifier(n_estimators=24, random_state=0, n_jobs=2).fit(X, y)
        scores = cross_val_score(DecisionTreeClassifier(random_state=0), X, y, cv=4, n_jobs=2)
        assert pat.joblib._executors.current() is executor
        after = tasks_run(executor)
    assert after - before >= 3, f"scikit-learn's work did not run on pat ({after - before} tasks)"
    assert np.array_equal(forest.predict_proba(X), sequential_forest.predict_proba(X))
    assert np.array_equal(scores, sequential_scores), (scores, sequential_scores)
    print(f"scikit-learn: forest and cross_val_score equal to sequential ({after - before} pat tasks)", flush=True)


def main():
    assert pat.in_group() != OUTSIDE
    assert "pat" in joblib.parallel.BACKENDS, "import pat did not register the backend"
    assert pat.joblib.register() == "pat"
    check_plain_calls()
    check_by_reference()
    check_scikit_learn()
    print("ok")


if __name__ == "__main__":
    main()
