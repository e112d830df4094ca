# CPython's textbook copy-on-write case, measured from the inside: the parent builds
# 2 million small objects (lists), forks a worker that only reads them (a full gc.collect(),
# which walks every tracked object and writes its GC header), and the worker reports how much
# its Private_Dirty grew meanwhile (/proc/self/smaps_rollup): the pages copied on either side,
# and its Private_Dirty at the end (everything made private since fork).
# With --freeze the parent calls gc.freeze() first: the objects move to the permanent
# generation and the collector leaves them alone.
#   usage: python3 cpython_fork.py [--freeze] [COUNT]
import gc
import os
import sys

def private_dirty_kb():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Private_Dirty:"):
                return int(line.split()[1])
    return 0

freeze = "--freeze" in sys.argv
numbers = [a for a in sys.argv[1:] if a.isdigit()]
count = int(numbers[0]) if numbers else 2_000_000
gc.disable()
data = [[i] for i in range(count)]
if freeze:
    gc.freeze()
pid = os.fork()
if pid == 0:
    before = private_dirty_kb()
    gc.collect()
    after = private_dirty_kb()
    # `after` counts every page made private since fork (copies by either side, and pages
    # the worker allocated); `after - before` only those of gc.collect().
    print(f"worker {os.getpid()} private_dirty_kb {after} growth_kb {after - before}", flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
