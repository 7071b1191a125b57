import Foundation

/// The C compiler that turns NAME.c into libNAME.so, and how to reach OpenMP with it.
///
/// Default: clang with the LLVM OpenMP runtime. Debian's libomp-dev installs omp.h and
/// libomp.so under /usr/lib/llvm-N, outside the include and library paths of other clang
/// builds (such as the one in a Swift toolchain), so when a probe compile cannot find
/// them they are looked for there. `RNNC_CC` and `RNNC_CFLAGS` override the choice.
public struct Toolchain: Sendable {
    public var compiler: String
    public var flags: [String]
    /// Extra flags to find OpenMP: the include path (compiling) and library path and
    /// rpath (linking), empty where the compiler finds it by itself.
    public var openmpCompileFlags: [String] = []
    public var openmpLinkFlags: [String] = []
    public var openmpFlags: [String] { openmpCompileFlags + openmpLinkFlags }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Toolchain {
        let compiler = environment["RNNC_CC"].flatMap { $0.isEmpty ? nil : $0 } ?? (which("clang") ?? which("cc") ?? "cc")
        let flags: [String]
        if let custom = environment["RNNC_CFLAGS"], !custom.isEmpty {
            flags = custom.split(separator: " ").map(String.init)
        } else {
            // -fno-math-errno: nothing reads errno, and without it sqrtf (the optimizer's
            // update) stays a scalar library call in loops that otherwise vectorize.
            flags = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-Wall", "-Wextra"]
                + wideVectorFlags(compiler: compiler)
        }
        var toolchain = Toolchain(compiler: compiler, flags: flags)
        if flags.contains(where: { $0.hasPrefix("-fopenmp") }) {
            (toolchain.openmpCompileFlags, toolchain.openmpLinkFlags) = try findOpenMP(compiler: compiler)
        }
        return toolchain
    }

    /// Compiles and links `source` into the shared library `output`.
    public func buildSharedLibrary(source: String, output: String, includeDirectory: String) throws {
        let args = flags + openmpFlags + ["-std=c11", "-fPIC", "-shared", "-I", includeDirectory, source, "-o", output, "-lm"]
        let (status, out) = Toolchain.run(compiler, args)
        guard status == 0 else {
            throw Failure(description: "the C compiler failed on \(source) (\(compiler) \(args.joined(separator: " "))):\n\(out)")
        }
    }

    /// Compiler diagnostics of a successful build (warnings), for tests of `-Wall -Wextra`.
    public func warnings(source: String, includeDirectory: String) -> String {
        let args = flags + openmpCompileFlags + ["-std=c11", "-fPIC", "-fsyntax-only", "-I", includeDirectory, source]
        return Toolchain.run(compiler, args).output
    }

    // MARK: Probing

    /// `-mprefer-vector-width=512` where the compiler takes it. Clang tunes Intel's AVX-512
    /// cores (Skylake-SP to Sapphire Rapids) to vectorize loops with 256-bit registers, to
    /// spare the clock that early cores lowered for 512-bit work; AMD's Zen 4 gets 512-bit
    /// loops already. The kernels' products use 512-bit registers by hand either way, so the
    /// clock is already the 512-bit one; the element-wise loops, the softmax and the
    /// optimizer then ran at half the width beside them. On an Intel Xeon (family 6 model
    /// 207, 2 cores), paired: inference at B = 32 0.97 (GRU) and 0.98 (LSTM), an LSTM training
    /// step at B = 32 0.96 (docs/PERFORMANCE.md). The results keep their bits but for the MSE
    /// loss's last bits: its double sum is an `omp simd` reduction, ordered by the vector's
    /// width. Where there is no AVX-512 the flag changes nothing; a compiler that rejects it
    /// goes without.
    static func wideVectorFlags(compiler: String) -> [String] {
        let flag = "-mprefer-vector-width=512"
        return run(compiler, [flag, "-fsyntax-only", "-x", "c", "/dev/null"]).status == 0 ? [flag] : []
    }

    private static func findOpenMP(compiler: String) throws -> (compile: [String], link: [String]) {
        let probe = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rnnc-omp-probe-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let src = dir.appendingPathComponent("probe.c").path
        let exe = dir.appendingPathComponent("probe").path
        try? probe.write(toFile: src, atomically: true, encoding: .utf8)
        if run(compiler, ["-fopenmp", src, "-o", exe]).status == 0 { return ([], []) }
        // Look where Debian's libomp-dev puts things: /usr/lib/llvm-N/lib/clang/V/include/omp.h
        // and /usr/lib/llvm-N/lib/libomp.so (newest N first).
        let fm = FileManager.default
        let llvmDirs = ((try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? [])
            .filter { $0.hasPrefix("llvm-") }
            .sorted { (Int($0.dropFirst(5)) ?? 0) > (Int($1.dropFirst(5)) ?? 0) }
        for llvm in llvmDirs {
            let lib = "/usr/lib/\(llvm)/lib"
            guard fm.fileExists(atPath: "\(lib)/libomp.so") else { continue }
            var includes: [String] = []
            let clangDir = "\(lib)/clang"
            for version in (try? fm.contentsOfDirectory(atPath: clangDir)) ?? [] {
                let inc = "\(clangDir)/\(version)/include"
                if fm.fileExists(atPath: "\(inc)/omp.h") { includes.append(inc) }
            }
            if fm.fileExists(atPath: "/usr/include/omp.h") { includes.append("/usr/include") }
            for inc in includes {
                let compile = ["-isystem", inc], link = ["-L", lib, "-Wl,-rpath,\(lib)"]
                if run(compiler, ["-fopenmp"] + compile + link + [src, "-o", exe]).status == 0 { return (compile, link) }
            }
        }
        throw Failure(description: """
            \(compiler) cannot build OpenMP code: omp.h or the OpenMP runtime is missing.
            Install it (Debian/Ubuntu: apt-get install libomp-dev), or set RNNC_CC to a compiler that has it (e.g. RNNC_CC=gcc), or set RNNC_CFLAGS without -fopenmp to build single-threaded.
            """)
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    public static func run(_ executable: String, _ args: [String]) -> (status: Int32, output: String) {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = args
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + args
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (127, "cannot run \(executable): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
