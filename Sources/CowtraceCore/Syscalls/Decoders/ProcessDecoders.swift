/// clone, clone3, fork, vfork, execve, exit, exit_group, wait4: strace's clone.c and friends.
enum ProcessDecoders {
    static let all: [([String], any SyscallDecoder)] = [
        (["clone"], Clone()),
        (["clone3"], Clone3()),
        (["fork", "vfork"], NoArguments()),
        (["execve"], Execve()),
        (["exit", "exit_group"], Exit()),
        (["wait4"], Wait4()),
        (["kill", "tkill"], Kill()),
    ]

    struct NoArguments: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String { "" }
    }

    /// clone(child_stack=…, flags=…|SIG…[, parent_tid=[N]][, tls=…][, child_tidptr=…])
    struct Clone: SyscallDecoder {
        static let tidFlags: UInt64 = CloneFlags([.parentSettid, .pidfd, .childSettid, .childCleartid, .settls]).rawValue

        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
            let flags = call[0] & ~CloneFlags.exitSignalMask
            let signal = Int32(call[0] & CloneFlags.exitSignalMask)
            var flagText: String
            if flags != 0 {
                flagText = StraceFormat.flags(flags, CloneFlags.cloneNames)
                if signal != 0 { flagText += "|" + SignalNames.name(signal) }
            } else {
                flagText = SignalNames.name(signal)
            }
            return "child_stack=\(StraceFormat.address(call[1])), flags=\(flagText)"
        }

        func exit(_ call: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String {
            let flags = CloneFlags(rawValue: call[0] & ~CloneFlags.exitSignalMask)
            guard flags.rawValue & Self.tidFlags != 0 else { return "" }
            var out = ""
            if !flags.isDisjoint(with: [.parentSettid, .pidfd]) {
                out += ", parent_tid="
                // The TID, or the pidfd with CLONE_PIDFD.
                out += flags.contains(.pidfd) || call[2] == 0 ? pointedInt(call[2], memory) : storedTid(outcome) ?? pointedInt(call[2], memory)
            }
            if flags.contains(.settls) { out += ", tls=" + StraceFormat.address(call[4]) }
            if !flags.isDisjoint(with: [.childSettid, .childCleartid]) {
                out += ", child_tidptr=" + StraceFormat.address(call[3])
            }
            return out
        }
    }

    /// What CLONE_PARENT_SETTID stored: the new TID, which the call also returns. Read back
    /// from memory it can already be gone: a thread sharing that memory may have exited and
    /// cleared the same word (CLONE_CHILD_CLEARTID, glibc passes one pointer for both).
    static func storedTid(_ outcome: SyscallOutcome) -> String? {
        guard case .value(let tid) = outcome, tid > 0 else { return nil }
        return "[\(tid)]"
    }

    /// clone3({flags=…, …}[ => {parent_tid=[N]}], size)
    struct Clone3: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
            guard let args = CloneArgs.read(call[0], size: call[1], memory) else {
                return StraceFormat.address(call[0]) + ", \(call[1])"
            }
            let flags = CloneFlags(rawValue: args.flags)
            var out = "{flags=" + StraceFormat.flags(args.flags, CloneFlags.clone3Names)
            if flags.contains(.pidfd) { out += ", pidfd=" + StraceFormat.address(args.pidfd) }
            if !flags.isDisjoint(with: [.childSettid, .childCleartid]) { out += ", child_tid=" + StraceFormat.address(args.childTid) }
            if flags.contains(.parentSettid) { out += ", parent_tid=" + StraceFormat.address(args.parentTid) }
            if args.exitSignal < UInt64(Int32.max) {
                out += ", exit_signal=" + SignalNames.name(Int32(args.exitSignal))
            } else {
                out += ", exit_signal=\(args.exitSignal)"
            }
            out += ", stack=" + StraceFormat.address(args.stack)
            out += ", stack_size=" + StraceFormat.hexOrZero(args.stackSize)
            if flags.contains(.settls) { out += ", tls=" + StraceFormat.address(args.tls) }
            if args.setTid != 0 || args.setTidSize != 0 {
                out += ", set_tid=" + StraceFormat.address(args.setTid) + ", set_tid_size=\(args.setTidSize)"
            }
            if args.fetched > 80 && (args.cgroup != 0 || flags.contains(.intoCgroup)) {
                out += ", cgroup=\(args.cgroup)"
            }
            out += "}"
            if waitsForExit(flags) { return out }
            return out + ", \(call[1])"
        }

        func exit(_ call: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String {
            guard let before = CloneArgs.read(call[0], size: call[1], memory).map({ CloneFlags(rawValue: $0.flags) }),
                  waitsForExit(before) else { return "" }
            guard case .value = outcome, let args = CloneArgs.read(call[0], size: call[1], memory) else {
                return ", \(call[1])"
            }
            var fields: [String] = []
            let flags = CloneFlags(rawValue: args.flags)
            if flags.contains(.pidfd) { fields.append("pidfd=" + pointedInt(args.pidfd, memory)) }
            if flags.contains(.parentSettid) { fields.append("parent_tid=" + ((args.parentTid == 0 ? nil : storedTid(outcome)) ?? pointedInt(args.parentTid, memory))) }
            let changed = fields.isEmpty ? "" : " => {" + fields.joined(separator: ", ") + "}"
            return changed + ", \(call[1])"
        }

        private func waitsForExit(_ flags: CloneFlags) -> Bool { !flags.isDisjoint(with: [.pidfd, .parentSettid]) }
    }

    struct Execve: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
            let path = StraceFormat.path(call[0], memory)
            return "\(path), \(stringArray(call[1], memory)), \(environment(call[2], memory))"
        }

        /// ["a", "b"]: strace shows at most 32 elements.
        private func stringArray(_ address: UInt64, _ memory: TraceeMemory) -> String {
            guard address != 0 else { return "NULL" }
            var items: [String] = []
            var cursor = address
            while true {
                guard let pointer = memory.readUInt64(cursor) else { return StraceFormat.hex(address) }
                if pointer == 0 { break }
                if items.count == StraceFormat.maxStringLength { items.append("..."); break }
                if let (bytes, terminated) = memory.readCString(pointer, limit: StraceFormat.maxStringLength + 1) {
                    items.append(StraceFormat.quoted(bytes, truncated: !terminated))
                } else {
                    items.append(StraceFormat.hex(pointer))
                }
                cursor += 8
            }
            return "[" + items.joined(separator: ", ") + "]"
        }

        /// 0x7ffe… /* 20 vars */
        private func environment(_ address: UInt64, _ memory: TraceeMemory) -> String {
            guard address != 0 else { return "NULL" }
            var count = 0
            var cursor = address
            while let pointer = memory.readUInt64(cursor), pointer != 0 {
                count += 1
                cursor += 8
            }
            return "\(StraceFormat.hex(address)) /* \(count) var\(count == 1 ? "" : "s") */"
        }
    }

    struct Exit: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String { String(Int32(truncatingIfNeeded: call[0])) }
        var returnStyle: ReturnStyle { .never }
    }

    struct Wait4: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
            String(Int32(truncatingIfNeeded: call[0])) + ", "
        }
        func exit(_ call: SyscallArguments, _ outcome: SyscallOutcome, _ memory: TraceeMemory) -> String {
            var status = "NULL"
            if call[1] != 0 {
                if case .value(let v) = outcome, v > 0, let raw = memory.readInt32(call[1]) {
                    status = "[" + Self.describe(raw) + "]"
                } else {
                    status = StraceFormat.hex(call[1])
                }
            }
            let options = StraceFormat.flags(call[2], [(1, "WNOHANG"), (2, "WUNTRACED"), (8, "WCONTINUED"), (0x40000000, "__WALL"), (0x80000000, "__WCLONE"), (0x20000000, "__WNOTHREAD")])
            return "\(status), \(options), \(StraceFormat.address(call[3]))"
        }

        static func describe(_ raw: Int32) -> String {
            switch WaitStatus(raw: raw) {
            case .exited(let code): return "{WIFEXITED(s) && WEXITSTATUS(s) == \(code)}"
            case .killed(let signal, let core):
                return "{WIFSIGNALED(s) && WTERMSIG(s) == \(SignalNames.name(signal))\(core ? " && WCOREDUMP(s)" : "")}"
            case .signalStop(let signal): return "{WIFSTOPPED(s) && WSTOPSIG(s) == \(SignalNames.name(signal))}"
            case .continued: return "{WIFCONTINUED(s)}"
            default: return StraceFormat.hex(UInt64(UInt32(bitPattern: raw)))
            }
        }
    }

    struct Kill: SyscallDecoder {
        func entry(_ call: SyscallArguments, _ memory: TraceeMemory) -> String {
            "\(Int32(truncatingIfNeeded: call[0])), \(SignalNames.name(Int32(truncatingIfNeeded: call[1])))"
        }
    }
}

/// printnum_int / printnum_pid: "[N]" read from the tracee, NULL, or the address if unreadable.
func pointedInt(_ address: UInt64, _ memory: TraceeMemory) -> String {
    guard address != 0 else { return "NULL" }
    guard let value = memory.readInt32(address) else { return StraceFormat.hex(address) }
    return "[\(value)]"
}
