# A pre-fork worker pool: the parent builds 2 million small objects (about 60,000 pages),
# then a multiprocessing.Pool(2) with the fork start method runs 200 small tasks that touch
# a slice of them each. Bounded: the pool is closed and joined; every task is short.
import multiprocessing as mp

data = [(i, str(i)) for i in range(2_000_000)]

def work(k):
    total = 0
    for item in data[k * 1000:(k + 1) * 1000]:
        total += item[0]
    return total

if __name__ == "__main__":
    mp.set_start_method("fork")
    with mp.Pool(2) as pool:
        results = pool.map(work, range(200), chunksize=4)
    assert len(results) == 200
