import Compiler
import Foundation
import Runtime

/// Turns MODEL (a .rnn file or a compiled directory) into a compiled directory.
/// A .rnn file is compiled once into a cache keyed by its content and the compiler's
/// version (`$RNNC_CACHE` or ~/.cache/rnnc), then reused.
enum ModelResolver {
    static func compiledDirectory(for model: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDir) else {
            throw FormatError("\(model): no such file or directory")
        }
        if isDir.boolValue { return model }
        let compilation = try Compilation(path: model)
        let env = ProcessInfo.processInfo.environment
        let root = env["RNNC_CACHE"] ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/rnnc")
        let toolchain = try Toolchain.detect()
        let key = "\(compilation.libraryName)-\(compilation.contentHash)-\(flagsHash(toolchain))"
        let dir = "\(root)/\(key)"
        let marker = "\(dir)/\(compilation.libraryName).json"
        if FileManager.default.fileExists(atPath: marker) { return dir }
        // Build beside the final place, then move it in whole: a crash leaves no half entry.
        let staging = "\(root)/.staging-\(key)-\(getpid())"
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        } catch {
            throw FormatError("cannot use the compile cache \(root): it is not a directory rnnc can create or write (set RNNC_CACHE to one)")
        }
        try? FileManager.default.removeItem(atPath: staging)
        try compilation.build(into: staging, toolchain: toolchain)
        if rename(staging, dir) != 0 {
            // Another process may have won the race; its entry is as good as ours.
            try? FileManager.default.removeItem(atPath: staging)
            guard FileManager.default.fileExists(atPath: marker) else {
                throw FormatError("cannot write the compile cache at \(dir): \(String(cString: strerror(errno)))")
            }
        }
        return dir
    }

    /// The C toolchain and this rnnc build: a rebuilt compiler (same version number,
    /// different code generator) must not reuse libraries an older build wrote.
    private static func flagsHash(_ t: Toolchain) -> String {
        var h: UInt32 = 2_166_136_261
        var info = stat()
        let build = stat("/proc/self/exe", &info) == 0 ? "\(info.st_size)-\(info.st_mtim.tv_sec)-\(info.st_mtim.tv_nsec)" : ""
        for b in (t.compiler + " " + t.flags.joined(separator: " ") + " " + build).utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return String(h, radix: 16)
    }
}
