// swift-tools-version:6.0
// cowtrace: a copy-on-write tracer for Linux x86-64.
import PackageDescription

let package = Package(
    name: "cowtrace",
    products: [
        .executable(name: "cowtrace", targets: ["cowtrace"]),
        .library(name: "CowtraceCore", targets: ["CowtraceCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The only C: variadic calls (ptrace, syscall), wait macros, and the post-fork spawn path.
        .target(
            name: "CCowtrace",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [
                // libunwind-ptrace (libunwind-dev) for unwind.c. gcc_s first: libunwind.so.8
                // also exports _Unwind_*, which the Swift runtime must bind to libgcc_s.
                // Debian's libunwind-ptrace uses liblzma without declaring it.
                .linkedLibrary("gcc_s"),
                .linkedLibrary("unwind-ptrace"),
                .linkedLibrary("unwind-generic"),
                .linkedLibrary("unwind"),
                .linkedLibrary("lzma"),
            ]
        ),
        .systemLibrary(
            name: "CLibdw",
            providers: [.apt(["libdw-dev"])]
        ),
        .systemLibrary(
            name: "CCapstone",
            pkgConfig: "capstone",
            providers: [.apt(["libcapstone-dev"])]
        ),
        .target(
            name: "CowtraceCore",
            dependencies: ["CCowtrace", "CCapstone", "CLibdw"],
            // The tracer's classes are touched from one thread only: the run-time exclusivity
            // checks (swift_beginAccess on every class property, ~7% of the tracing thread's
            // user time at each stop) catch nothing there. Debug builds and tests keep them.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .target(
            name: "CowtraceCLI",
            dependencies: [
                "CowtraceCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "cowtrace",
            dependencies: ["CowtraceCLI"]
        ),
        .testTarget(
            name: "CowtraceCoreTests",
            dependencies: ["CowtraceCore"]
        ),
        .testTarget(
            name: "CowtraceIntegrationTests",
            dependencies: ["CowtraceCore"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
