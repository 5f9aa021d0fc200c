import Foundation

/// "Did you mean ...?" for a mistyped config key, shared by every config reader (finetune
/// configs, evaluation configs), so they suggest alike.
///
/// Usage: `KeySuggestion.nearest(to: "temprature", among: ["temperature", "top_p"])  // "temperature"`
public enum KeySuggestion {
    /// With `byPrefix`, the candidate that starts with what was typed (3 characters or more);
    /// else the closest one by edit distance when it is within max(2, a third of the typed
    /// length); nil otherwise.
    public static func nearest(to typed: String, among candidates: [String], byPrefix: Bool = true) -> String? {
        if byPrefix, typed.count >= 3, let prefixed = candidates.first(where: { $0.hasPrefix(typed) }) { return prefixed }
        let ranked = candidates.map { ($0, editDistance(typed, $0)) }
        guard let (candidate, distance) = ranked.min(by: { $0.1 < $1.1 }) else { return nil }
        return distance <= max(2, typed.count / 3) ? candidate : nil
    }

    /// Levenshtein distance (insertions, deletions, substitutions each cost 1).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
