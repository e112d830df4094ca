import Glibc

/// Writes a pipe's or socket's full buffers on a thread of its own, so that a long log (a
/// line per split) does not hold the tracer while the reader catches up (a file is written in
/// line: `OutputSink.writesOnThread`).
/// Bounded double buffering: one buffer is filled by the tracer while at most one other is
/// being written (the tracer waits when both are full); the written one comes back for reuse.
/// Only bytes cross between the threads, never trace events: no reference counts or
/// allocations are shared with the tracer's hot path.
final class BufferWriter: @unchecked Sendable {
    private let fd: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The buffer handed over and not taken yet; the one being written (`busy`); the last
    /// one written, empty, for the tracer to fill next.
    private var pending: [UInt8]?
    private var busy = false
    private var spare: [UInt8]?
    /// The first failed write's errno: nothing more is written after it.
    private var error: Int32?
    private var stopping = false
    private var thread = pthread_t()

    private init(fd: Int32) {
        self.fd = fd
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        changed.deallocate()
    }

    /// A writer on `fd`, its thread started with every signal blocked (the tracer's
    /// interrupts, ticks and SIGCHLD must wake its wait, never land here); nil when no
    /// thread can be made.
    static func start(fd: Int32) -> BufferWriter? {
        let writer = BufferWriter(fd: fd)
        var all = sigset_t(), old = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        let context = Unmanaged.passRetained(writer).toOpaque()
        let rc = pthread_create(&writer.thread, nil, { context in
            Unmanaged<BufferWriter>.fromOpaque(context!).takeRetainedValue().loop()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<BufferWriter>.fromOpaque(context).release()
            return nil
        }
        return writer
    }

    private func loop() {
        pthread_mutex_lock(lock)
        while true {
            while pending == nil && !stopping { pthread_cond_wait(changed, lock) }
            guard var bytes = pending else { break }  // stopping, everything written
            pending = nil
            busy = true
            let failed = error != nil
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
            let result = failed ? nil : Self.writeAll(fd, bytes)
            bytes.removeAll(keepingCapacity: true)
            pthread_mutex_lock(lock)
            if error == nil { error = result }
            busy = false
            spare = bytes
            pthread_cond_broadcast(changed)
        }
        pthread_mutex_unlock(lock)
    }

    /// Hands `buffer` over (waiting while another still waits to be written) and replaces
    /// it with an empty one, the capacity of a buffer written before when there is one.
    func hand(_ buffer: inout [UInt8]) {
        pthread_mutex_lock(lock)
        while pending != nil { pthread_cond_wait(changed, lock) }
        pending = buffer
        buffer = spare ?? []
        spare = nil
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Waits until everything handed over is written; the first write error, if any.
    func drain() -> Int32? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        while pending != nil || busy { pthread_cond_wait(changed, lock) }
        return error
    }

    /// Writes what is left and ends the thread.
    func stop() {
        pthread_mutex_lock(lock)
        stopping = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
        pthread_join(thread, nil)
    }

    /// Writes all of `bytes` (a short write goes on, EINTR is retried); the errno of a
    /// failure (EIO for a write of nothing), nil when all was written.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return errno }
            if n == 0 { return EIO }
            offset += n
        }
        return nil
    }
}
