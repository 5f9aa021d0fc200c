import Foundation

/// Reads `chat`'s input lines with editing when stdin and stdout are a terminal: arrows move
/// the cursor (left, right, home, end; Ctrl-A, Ctrl-E), Up and Down walk the session's history,
/// Backspace, Delete, Ctrl-U, Ctrl-K and Ctrl-W delete, Enter submits, Ctrl-D on an empty line
/// and Ctrl-C end input. Elsewhere (pipes, files, TERM=dumb) lines are read as they come.
///
/// Usage: `let editor = LineEditor(prompt: "> "); while let line = editor.readLine() { ... }`
final class LineEditor {
    let prompt: String
    private(set) var history: [String] = []
    private let editing: Bool

    init(prompt: String) {
        self.prompt = prompt
        editing = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// The next line without its newline; nil at the end of input.
    func readLine() -> String? {
        guard editing, var saved = Self.rawMode() else {
            if isatty(STDIN_FILENO) == 1 { write(prompt) }
            let line = Swift.readLine(strippingNewline: true)
            if line == nil, isatty(STDIN_FILENO) == 1 { write("\n") }  // Ctrl-D: end the prompt's line
            return line
        }
        defer { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
        var buffer = LineBuffer(history: history)
        var decoder = KeyDecoder()
        redraw(buffer)
        while true {
            var byte: UInt8 = 0
            let n = read(STDIN_FILENO, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            guard n == 1 else { write("\n"); return buffer.isEmpty ? nil : submit(buffer.line) }
            guard let key = decoder.feed(byte) else { continue }
            switch buffer.apply(key) {
            case .editing: redraw(buffer)
            case .submit:
                write("\n")
                return submit(buffer.line)
            case .endOfInput:
                write("\n")
                return nil
            }
        }
    }

    private func submit(_ line: String) -> String {
        if !line.trimmingCharacters(in: .whitespaces).isEmpty, history.last != line { history.append(line) }
        return line
    }

    private func redraw(_ buffer: LineBuffer) {
        let after = buffer.displayWidthAfterCursor
        write("\r" + prompt + buffer.line + "\u{1B}[K" + (after > 0 ? "\u{1B}[\(after)D" : ""))
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Puts the terminal in character-at-a-time mode without echo; returns the settings to restore.
    private static func rawMode() -> termios? {
        var original = termios()
        guard tcgetattr(STDIN_FILENO, &original) == 0 else { return nil }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutablePointer(to: &raw.c_cc) { cc in
            cc.withMemoryRebound(to: cc_t.self, capacity: Int(NCCS)) { c in
                c[Int(VMIN)] = 1
                c[Int(VTIME)] = 0
            }
        }
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0 else { return nil }
        return original
    }
}

/// A key the editor understands.
enum EditKey: Equatable {
    case insert(Character)
    case backspace, delete, left, right, home, end, up, down
    case killToStart, killToEnd, deleteWord
    case enter, endOfFile, interrupt
}

/// Turns terminal bytes into keys: UTF-8 characters, control keys and the escape sequences of
/// arrows, Home, End and Delete (CSI and SS3 forms). Unknown sequences are dropped whole.
struct KeyDecoder {
    private var pending: [UInt8] = []

    mutating func feed(_ byte: UInt8) -> EditKey? {
        pending.append(byte)
        let p = pending
        if p[0] == 0x1B {
            guard p.count >= 2 else { return nil }
            guard p[1] == UInt8(ascii: "[") || p[1] == UInt8(ascii: "O") else { pending = []; return nil }
            guard p.count >= 3 else { return nil }
            // CSI parameters are digits and ';', ended by a final byte 0x40-0x7E
            let last = p[p.count - 1]
            if (0x30...0x3F).contains(last) && p.count < 16 { return nil }
            pending = []
            switch (p[1], last, p.dropFirst(2).dropLast()) {
            case (_, UInt8(ascii: "A"), _): return .up
            case (_, UInt8(ascii: "B"), _): return .down
            case (_, UInt8(ascii: "C"), _): return .right
            case (_, UInt8(ascii: "D"), _): return .left
            case (_, UInt8(ascii: "H"), _): return .home
            case (_, UInt8(ascii: "F"), _): return .end
            case (UInt8(ascii: "["), UInt8(ascii: "~"), let parameters):
                switch String(decoding: parameters, as: UTF8.self) {
                case "1", "7": return .home
                case "4", "8": return .end
                case "3": return .delete
                default: return nil
                }
            default: return nil
            }
        }
        if p.count == 1 {
            switch byte {
            case 0x0D, 0x0A: pending = []; return .enter
            case 0x7F, 0x08: pending = []; return .backspace
            case 0x01: pending = []; return .home
            case 0x05: pending = []; return .end
            case 0x02: pending = []; return .left
            case 0x06: pending = []; return .right
            case 0x10: pending = []; return .up
            case 0x0E: pending = []; return .down
            case 0x15: pending = []; return .killToStart
            case 0x0B: pending = []; return .killToEnd
            case 0x17: pending = []; return .deleteWord
            case 0x04: pending = []; return .endOfFile
            case 0x03: pending = []; return .interrupt
            case 0x00..<0x20: pending = []; return nil
            default: break
            }
        }
        // UTF-8: wait for the whole character
        let expected: Int
        switch p[0] {
        case 0x00..<0x80: expected = 1
        case 0xC0..<0xE0: expected = 2
        case 0xE0..<0xF0: expected = 3
        case 0xF0..<0xF8: expected = 4
        default: pending = []; return nil
        }
        guard p.count >= expected else { return nil }
        pending = []
        guard let text = String(validating: p, as: UTF8.self), let character = text.first else { return nil }
        return .insert(character)
    }
}

/// The line being edited, its cursor and the walk through history.
struct LineBuffer {
    enum Outcome { case editing, submit, endOfInput }

    private var characters: [Character] = []
    private var cursor = 0
    private let history: [String]
    private var historyIndex: Int
    /// The line being typed before Up was pressed, given back by Down.
    private var draft: [Character] = []

    init(history: [String]) {
        self.history = history
        historyIndex = history.count
    }

    var line: String { String(characters) }
    var isEmpty: Bool { characters.isEmpty }

    /// Terminal columns between the cursor and the end of the line.
    var displayWidthAfterCursor: Int { characters[cursor...].reduce(0) { $0 + Self.width($1) } }

    mutating func apply(_ key: EditKey) -> Outcome {
        switch key {
        case let .insert(c):
            characters.insert(c, at: cursor); cursor += 1
        case .backspace:
            if cursor > 0 { characters.remove(at: cursor - 1); cursor -= 1 }
        case .delete:
            if cursor < characters.count { characters.remove(at: cursor) }
        case .left: cursor = max(0, cursor - 1)
        case .right: cursor = min(characters.count, cursor + 1)
        case .home: cursor = 0
        case .end: cursor = characters.count
        case .up:
            guard historyIndex > 0 else { break }
            if historyIndex == history.count { draft = characters }
            historyIndex -= 1
            characters = Array(history[historyIndex]); cursor = characters.count
        case .down:
            guard historyIndex < history.count else { break }
            historyIndex += 1
            characters = historyIndex == history.count ? draft : Array(history[historyIndex]); cursor = characters.count
        case .killToStart:
            characters.removeFirst(cursor); cursor = 0
        case .killToEnd:
            characters.removeLast(characters.count - cursor)
        case .deleteWord:
            var start = cursor
            while start > 0, characters[start - 1].isWhitespace { start -= 1 }
            while start > 0, !characters[start - 1].isWhitespace { start -= 1 }
            characters.removeSubrange(start..<cursor); cursor = start
        case .enter: return .submit
        case .endOfFile:
            if characters.isEmpty { return .endOfInput }
            if cursor < characters.count { characters.remove(at: cursor) }
        case .interrupt: return .endOfInput
        }
        return .editing
    }

    /// Columns a character takes: two for East Asian wide characters and most emoji.
    static func width(_ c: Character) -> Int {
        guard let v = c.unicodeScalars.first?.value else { return 0 }
        let wide: [ClosedRange<UInt32>] = [0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F,
                                           0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x1F300...0x1FAFF, 0x20000...0x3FFFD]
        return wide.contains { $0.contains(v) } ? 2 : 1
    }
}
