# A pre-fork server in miniature: the parent builds a large list of objects, forks, and the
# child walks the list. Reading an object in CPython writes its reference count, so the
# child copies every page of objects it touches.
import os

data = [str(i) * 3 for i in range(300_000)]
pid = os.fork()
if pid == 0:
    total = 0
    for item in data:
        total += len(item)
    os._exit(0 if total > 0 else 1)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
