/// Whatever consumes trace events: the text log, the JSON log, the summary, reports.
public protocol EventRenderer: AnyObject {
    /// `tracees` is how many threads were traced when the event happened (strace prefixes
    /// lines with their pid while there is more than one).
    func render(_ event: TraceEvent, tracees: Int)
    func flush()
}

extension EventRenderer {
    public func flush() {}
}

/// The one ordered path from detection to the renderers. A split whose copy-or-migration
/// check is deferred until the tracees run again holds a reserved slot: detection fills it
/// with the final event (or with nothing, for a migration), and everything emitted after it
/// waits until then, so the output order is the order things happened. The stream decides
/// nothing and calls nothing back.
public final class EventStream {
    private var renderers: [any EventRenderer] = []
    /// Events waiting behind an unfilled slot; nil marks a slot not filled yet.
    private var held: [(event: TraceEvent?, tracees: Int, slot: Int?)] = []
    /// The first of `held` not delivered yet (an index, so releasing many is linear).
    private var head = 0
    private var nextSlot = 0
    private var filled: [Int: TraceEvent?] = [:]
    /// How many threads are traced now.
    public var traceeCount = 1
    /// The end-of-run totals, built from the same events.
    public let summary = SummaryCollector()

    public init() { renderers.append(summary) }

    public func add(_ renderer: any EventRenderer) { renderers.append(renderer) }

    /// A consumer that must see each event before the logs print it (the live status line
    /// clears itself before the summary).
    public func addFirst(_ renderer: any EventRenderer) { renderers.insert(renderer, at: 0) }

    public func emit(_ event: TraceEvent) {
        if head == held.count {
            deliver(event, tracees: traceeCount)
        } else {
            held.append((event, traceeCount, nil))
        }
    }

    /// A place in the order for an event decided later (`fill`).
    public func reserve() -> Int {
        defer { nextSlot += 1 }
        held.append((nil, traceeCount, nextSlot))
        return nextSlot
    }

    /// The event for a reserved slot; nil withdraws nothing from the renderers' view: they
    /// never saw the slot.
    public func fill(_ slot: Int, with event: TraceEvent?) {
        filled[slot] = .some(event)
        release()
    }

    private func release() {
        defer {
            if head == held.count {
                held.removeAll(keepingCapacity: true)
                head = 0
            }
        }
        while head < held.count {
            let first = held[head]
            if let slot = first.slot {
                guard let decided = filled.removeValue(forKey: slot) else { return }
                head += 1
                if let event = decided { deliver(event, tracees: first.tracees) }
            } else {
                head += 1
                deliver(first.event!, tracees: first.tracees)
            }
        }
    }

    private func deliver(_ event: TraceEvent, tracees: Int) {
        for renderer in renderers { renderer.render(event, tracees: tracees) }
    }

    public func flush() {
        for renderer in renderers { renderer.flush() }
    }

    /// A remark of cowtrace's own.
    public func note(_ text: String) { emit(.note(text)) }
}
