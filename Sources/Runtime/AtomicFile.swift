// Whole-file I/O for the formats: reading a file's bytes, and replacing a file atomically.
//
// Both go straight to the POSIX calls rather than Foundation so that every failure carries
// the OS's own reason (strerror) and so that writing can fsync: the spec promises "never a
// partial output file", which only holds if the bytes are on disk before the rename makes
// them visible under the final name.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old contents or the complete new ones.
public enum AtomicFile {
    /// Writes bytes to a temporary file in the same directory, fsyncs it, renames it over
    /// `path` and fsyncs the directory. On any failure the old file at `path` (if any) is
    /// untouched and the temporary file is removed.
    ///
    /// Throws a `FormatError` naming the path and the OS reason, e.g.
    /// `cannot write out/x.npy: No such file or directory`.
    public static func write(_ data: [UInt8], to path: String) throws {
        func failure(_ reason: String) -> FormatError {
            FormatError("cannot write \(path): \(reason)")
        }
        let (directory, base) = split(path)
        guard !base.isEmpty, base != ".", base != ".." else {
            throw failure("not a file name")
        }

        // The temporary file must live in the target directory: rename(2) is only atomic
        // within one file system. The name is hidden, unique per process and attempt, and
        // short enough that a long target name cannot push it past NAME_MAX.
        let stem = String(base.utf8.prefix(64).map { Character(Unicode.Scalar($0 < 0x80 ? $0 : 0x5F)) })
        var fd: Int32 = -1
        var temp = ""
        for _ in 0..<16 {
            temp = directory + "/." + stem + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw failure(osReason()) }

        // From here on, any failure must remove the temporary file.
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }

        // Replacing a file should not silently change who may read it. (A symlink at
        // `path` is replaced by the new file, like any rename; its target keeps its contents.)
        var old = stat()
        if stat(path, &old) == 0, (old.st_mode & S_IFMT) == S_IFREG {
            _ = fchmod(fd, old.st_mode & 0o7777)
        }

        if let reason = writeAll(fd, data) {
            close(fd)
            throw failure(reason)
        }
        if fsync(fd) != 0 {
            let reason = osReason()
            close(fd)
            throw failure(reason)
        }
        if close(fd) != 0 { throw failure(osReason()) }
        if rename(temp, path) != 0 { throw failure(osReason()) }
        ok = true

        // Make the rename itself durable. Best effort: some file systems refuse to fsync a
        // directory, and the new file is already complete and in place either way.
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    /// Splits a path into its directory ("." when there is none) and last component.
    static func split(_ path: String) -> (directory: String, base: String) {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return (".", path) }
        let base = String(decoding: bytes[(slash + 1)...], as: UTF8.self)
        let directory = slash == 0 ? "/" : String(decoding: bytes[..<slash], as: UTF8.self)
        return (directory, base)
    }

    /// Writes every byte, retrying short writes and interrupted calls; returns the OS reason on failure.
    private static func writeAll(_ fd: Int32, _ data: [UInt8]) -> String? {
        data.withUnsafeBytes { raw -> String? in
            var offset = 0
            while offset < raw.count {
                // Large writes are split so that no single call exceeds what every kernel accepts.
                let chunk = min(raw.count - offset, 1 << 30)
                let n = sysWrite(fd, raw.baseAddress! + offset, chunk)
                if n < 0 {
                    if errno == EINTR { continue }
                    return osReason()
                }
                if n == 0 { return "the write made no progress" }
                offset += n
            }
            return nil
        }
    }
}

/// Reads whole files for the format parsers.
public enum FileBytes {
    /// Whether a regular file (or anything) exists at the path.
    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// Returns the file's bytes, or throws `cannot read PATH: REASON` with the OS reason.
    public static func read(_ path: String) throws -> [UInt8] {
        func failure(_ reason: String) -> FormatError {
            FormatError("cannot read \(path): \(reason)")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(osReason()) }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(osReason()) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw failure(String(cString: strerror(EISDIR))) }

        // The size is only a hint (pipes and /proc files report 0, files may grow), so read
        // until end of file.
        var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size), 0) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 1 << 16)))
            }
            let n = bytes.withUnsafeMutableBytes { raw in
                sysRead(fd, raw.baseAddress! + count, raw.count - count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(osReason())
            }
            if n == 0 { break }
            count += n
        }
        bytes.removeSubrange(count...)
        return bytes
    }
}

/// The current `errno` as the OS's message, e.g. "No such file or directory".
private func osReason() -> String {
    String(cString: strerror(errno))
}

// `read` and `write` are shadowed inside the enums by their own static methods; these
// name the system calls.
private func sysRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

private func sysWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
