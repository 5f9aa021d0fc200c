// Each end-to-end measurement runs in a child process of this executable, so that its load
// time and peak RSS are its own; the child prints one JSON line as its last line of output.
import Foundation

enum ChildProcess {
    /// Runs this executable with `arguments` and decodes the last line it prints; nil (after
    /// printing a line naming `label`) when the child fails.
    static func measure<T: Decodable>(_ type: T.Type, arguments: [String], label: String) throws -> T? {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        child.arguments = arguments
        let pipe = Pipe()
        child.standardOutput = pipe
        try child.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        child.waitUntilExit()
        guard child.terminationStatus == 0,
              let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last,
              let m = try? JSONDecoder().decode(T.self, from: Data(line.utf8)) else {
            print("  \(label): child failed (status \(child.terminationStatus))")
            return nil
        }
        return m
    }
}
