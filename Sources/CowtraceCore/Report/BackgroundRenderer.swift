import Glibc

/// Runs a renderer (the text log) on a thread of its own, so that formatting and writing a
/// line per split happens while the tracer goes on tracing: the tracer only appends the event
/// to a batch. Bounded double buffering: one batch is filled here while at most one other
/// waits for the thread (the tracer waits when both are full). Nothing is lost in silence:
/// `flush` returns once every event handed over is rendered and written (the 250 ms tick, the
/// end of the run, an interruption, a break), and so does `deinit`.
///
/// The thread starts with the first full batch, never before: a run that logs little needs
/// none, and a program launched before it exists inherits cowtrace's signal state untouched
/// (glibc installs a handler for its internal SIGSETXID at the first pthread_create, and exec
/// would reset that signal to default where it had been inherited ignored). Until then
/// batches are rendered here, at each flush.
public final class BackgroundRenderer: EventRenderer {
    public typealias Item = (event: TraceEvent, tracees: Int)

    private let shared: Shared
    private var thread: pthread_t?
    private var triedThread = false
    private var batch: [Item] = []
    /// Events per hand-over: large enough that the lock is rare, small enough that a batch
    /// is rendered in well under a millisecond.
    static let batchSize = 512

    public init(_ renderer: any EventRenderer) {
        shared = Shared(renderer)
        batch.reserveCapacity(Self.batchSize)
    }

    /// Whether the thread runs (the tests' proof that the batches went through it).
    var threaded: Bool { thread != nil }

    public func render(_ event: TraceEvent, tracees: Int) {
        batch.append((event, tracees))
        if batch.count >= Self.batchSize { handOver(flush: false) }
    }

    public func flush() { handOver(flush: true) }

    private func handOver(flush: Bool) {
        if thread == nil && !triedThread && !flush {
            triedThread = true
            thread = shared.start()
        }
        if thread != nil {
            shared.hand(batch, flush: flush)
        } else {
            // No thread (yet, or none could be made): in line, as the renderer would be.
            for item in batch { shared.renderer.render(item.event, tracees: item.tracees) }
            if flush { shared.renderer.flush() }
        }
        batch = []
        batch.reserveCapacity(Self.batchSize)
    }

    deinit {
        handOver(flush: true)
        if let thread {
            shared.stop()
            pthread_join(thread, nil)
        }
    }

    /// What the two threads share, under `lock`; the renderer is used only by the thread.
    private final class Shared: @unchecked Sendable {
        let renderer: any EventRenderer
        private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        /// The batch handed over and not taken yet (the second buffer).
        private var pending: [Item]?
        private var flushesAsked = 0
        private var flushesDone = 0
        private var stopping = false

        init(_ renderer: any EventRenderer) {
            self.renderer = renderer
            pthread_mutex_init(lock, nil)
            pthread_cond_init(changed, nil)
        }

        deinit {
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(lock)
            lock.deallocate()
            changed.deallocate()
        }

        /// The thread, started with every signal blocked: the tracer's interrupts, ticks and
        /// SIGCHLD must wake its wait, never land here.
        func start() -> pthread_t? {
            var all = sigset_t(), old = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, &old)
            defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&thread, nil, { context in
                let shared = Unmanaged<Shared>.fromOpaque(context!).takeRetainedValue()
                shared.loop()
                return nil
            }, context)
            guard rc == 0 else {
                Unmanaged<Shared>.fromOpaque(context).release()
                return nil
            }
            return thread
        }

        private func loop() {
            pthread_mutex_lock(lock)
            while true {
                while pending == nil && flushesAsked == flushesDone && !stopping { pthread_cond_wait(changed, lock) }
                if pending == nil && flushesAsked == flushesDone { break }  // stopping, nothing left
                let items = pending ?? []
                pending = nil
                let flushTo = flushesAsked
                pthread_cond_broadcast(changed)  // the second buffer is free
                pthread_mutex_unlock(lock)
                for item in items { renderer.render(item.event, tracees: item.tracees) }
                if flushTo != flushesDone { renderer.flush() }
                pthread_mutex_lock(lock)
                flushesDone = flushTo
                pthread_cond_broadcast(changed)
            }
            pthread_mutex_unlock(lock)
        }

        /// Hands `items` over (waiting while the other buffer is still full); with `flush`,
        /// returns once they and everything before them are rendered and written.
        func hand(_ items: [Item], flush: Bool) {
            pthread_mutex_lock(lock)
            defer { pthread_mutex_unlock(lock) }
            guard !items.isEmpty || flush else { return }
            while pending != nil { pthread_cond_wait(changed, lock) }
            pending = items
            guard flush else {
                pthread_cond_broadcast(changed)
                return
            }
            flushesAsked += 1
            let target = flushesAsked
            pthread_cond_broadcast(changed)
            while flushesDone < target { pthread_cond_wait(changed, lock) }
        }

        func stop() {
            pthread_mutex_lock(lock)
            stopping = true
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
        }
    }
}
