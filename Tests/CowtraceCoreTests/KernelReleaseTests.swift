@testable import CowtraceCore
import Testing

/// Whether this kernel's release is at least a version (FaultFilter: Linux 6.10 drops the
/// sigtrap of a sample its BPF program drops), on uname's strings.
@Suite struct KernelReleaseTests {
    @Test func releasesComparedByMajorAndMinor() {
        #expect(FaultFilter.releaseAtLeast("6.18.0-1-amd64", 6, 10))
        #expect(FaultFilter.releaseAtLeast("6.10.0", 6, 10))
        #expect(!FaultFilter.releaseAtLeast("6.9.12-arch1", 6, 10))
        #expect(!FaultFilter.releaseAtLeast("5.19.0", 6, 10))
        #expect(FaultFilter.releaseAtLeast("7.0.0", 6, 10))
        #expect(!FaultFilter.releaseAtLeast("garbage", 6, 10))
    }
}
