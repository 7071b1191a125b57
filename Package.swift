// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "rnnc",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "rnnc", targets: ["rnnc"]),
        .library(name: "Compiler", targets: ["Compiler"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Typed, shaped SSA graph with recurrent scan regions; verifier and printer.
        .target(name: "GraphIR"),
        // Hand-written C the generated code includes: kernels and the safetensors loader.
        // Header-only (static inline) so every generated library is self-contained; the
        // .c file only lets SwiftPM compile and test the headers directly.
        .target(name: "CKernels"),
        // Front end, passes, C emitter and the driver that builds libNAME.so.
        // The kernel headers are embedded (symlinks into CKernels) so an installed rnnc
        // can write them beside every generated NAME.c.
        .target(
            name: "Compiler",
            dependencies: ["GraphIR"],
            resources: [
                .embedInCode("Embedded/rnnc_kernels.h"),
                .embedInCode("Embedded/rnnc_safetensors.h"),
                .embedInCode("Embedded/prelude.rnn"),
            ]
        ),
        // File formats (safetensors, .npy) and the loader that runs a compiled library.
        .target(name: "Runtime"),
        .executableTarget(
            name: "rnnc",
            dependencies: [
                "Compiler", "Runtime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "GraphIRTests", dependencies: ["GraphIR"]),
        .testTarget(name: "CompilerTests", dependencies: ["Compiler", "GraphIR", "Runtime"], exclude: ["Snapshots"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "CKernels", "Compiler"]),
    ]
)
