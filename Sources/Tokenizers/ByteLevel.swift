/// GPT-2's reversible byte-to-character mapping. Byte-level BPE vocabularies store every token
/// as a string of these characters: printable Latin-1 bytes stand for themselves, the others
/// (control bytes, space, DEL, NBSP, soft hyphen) are shifted to U+0100 and beyond so that no
/// token contains whitespace or control characters ("Ġ" is the space, "Ċ" the newline).
enum ByteLevel {
    /// `characterForByte[b]` is the vocabulary character standing for byte `b`.
    static let characterForByte: [Unicode.Scalar] = {
        var result = [Unicode.Scalar](repeating: "\0", count: 256)
        var shifted: UInt32 = 256
        for byte in 0..<256 {
            if standsForItself(UInt8(byte)) {
                result[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // Always valid: 256 + at most 68 shifted bytes stays far below the surrogates.
                result[byte] = Unicode.Scalar(shifted) ?? "\0"
                shifted += 1
            }
        }
        return result
    }()

    /// Inverse of `characterForByte`, keyed by scalar value.
    static let byteForCharacter: [UInt32: UInt8] = {
        var result: [UInt32: UInt8] = [:]
        for (byte, scalar) in characterForByte.enumerated() { result[scalar.value] = UInt8(byte) }
        return result
    }()

    private static func standsForItself(_ byte: UInt8) -> Bool {
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
    }

    /// The vocabulary spelling of raw bytes, e.g. `[0x20, 0x61]` -> "Ġa".
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characterForByte[Int(byte)]) }
        return String(scalars)
    }

    /// The raw bytes a vocabulary spelling stands for. Characters outside the mapping (which a
    /// well-formed byte-level vocabulary never contains) are kept as their own UTF-8 bytes.
    static func decode(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if let byte = byteForCharacter[scalar.value] {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
        return bytes
    }
}
