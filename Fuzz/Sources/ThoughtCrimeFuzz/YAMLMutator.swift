import Foundation
import Training

/// A structure-aware mutator for the YAML targets (config, eval-config, questions): half of the
/// mutations vary what YAML readers disagree on or recurse over (nesting syntax, line ends,
/// scalar styles and tags, anchors), the other half are libFuzzer's own byte mutations. The
/// other targets use libFuzzer's mutations only.
///
/// Found by hand before this existed: nesting spelled with CR line ends, explicit `? ` keys,
/// tags or a quote inside a plain scalar got past a text scan of the nesting depth (issue 29).
@_silgen_name("LLVMFuzzerMutate")
func LLVMFuzzerMutate(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int) -> Int

@_cdecl("LLVMFuzzerCustomMutator")
public func customMutator(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    guard [.config, .evalConfig, .questions].contains(target), let data else { return LLVMFuzzerMutate(data, size, maxSize) }
    var rng = TrainingRNG(seed: UInt64(seed) << 32 | UInt64(UInt32(truncatingIfNeeded: size)))
    guard rng.below(2) == 0 else { return LLVMFuzzerMutate(data, size, maxSize) }
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    YAMLMutations.apply(&bytes, &rng)
    let count = min(bytes.count, maxSize)
    bytes.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    return count
}

extension TrainingRNG {
    /// A uniform index in 0..<n (0 when n is 0).
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : nextIndex(below: n) }
}

enum YAMLMutations {
    static func apply(_ bytes: inout [UInt8], _ rng: inout TrainingRNG) {
        let at = rng.below(bytes.count + 1)
        func insert(_ text: String, _ position: Int) { bytes.insert(contentsOf: Array(text.utf8), at: min(position, bytes.count)) }
        switch rng.below(9) {
        case 0:  // nest deeper in flow style, many levels at once
            let depth = 1 + rng.below(200)
            insert(String(repeating: ["[", "{a: ", "!!seq [", "&x ["][rng.below(4)], count: depth), at)
        case 1:  // nest in block style: compact sequences or explicit keys
            insert(String(repeating: ["- ", "? ", "- ? "][rng.below(3)], count: 1 + rng.below(200)), at)
        case 2:  // indentation that opens mappings line by line
            let lineEnd = ["\n", "\r\n", "\r"][rng.below(3)]
            insert((0..<(1 + rng.below(60))).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: lineEnd), at)
        case 3:  // every line end in another convention
            let to: [UInt8] = [[13], [13, 10], [10]][rng.below(3)]
            var out: [UInt8] = []
            for b in bytes { if b == 10 || b == 13 { out += to } else { out.append(b) } }
            bytes = out
        case 4:  // a tag on a scalar
            insert(["!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!custom ", "!!binary "][rng.below(7)], at)
        case 5:  // another scalar style
            insert(["'", "\"", "|\n  ", ">-\n  ", "\"\\u202e", "\"\\ud800\""][rng.below(6)], at)
        case 6:  // anchors and aliases, a few levels of expansion
            insert("a0: &a0 [x, x]\na1: &a1 [*a0, *a0, *a0]\na2: &a2 [*a1, *a1, *a1]\nz: *a2\n", at)
        case 7:  // a quote or comment marker inside a plain scalar
            insert(["x-'y ", "a'b ", " #", "#", "a: b: c"][rng.below(5)], at)
        default:  // a document marker or directive
            insert(["---\n", "...\n", "%YAML 1.1\n---\n", "%TAG ! tag:x,2000:\n---\n"][rng.below(4)], at)
        }
    }
}
