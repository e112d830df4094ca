"""What the benchmarks read from a cowtrace --json log (imported by their Python parts)."""


def places(events):
    """A function that names where each split's store was: frame #0's symbol, or for a store
    in code without a symbol (a stripped server's static functions) its module, else the cause."""
    stacks = {e["id"]: e["frames"] for e in events if e["event"] == "stack"}

    def where(s):
        if s.get("symbol"):
            return s["symbol"].split("+")[0]
        frames = s.get("backtrace") or stacks.get(s.get("stack"), [])
        if s["cause"] == "instruction" and frames and frames[0].get("module"):
            return frames[0]["module"].rsplit("/", 1)[-1] + " (no symbol)"
        return s["cause"]

    return where
