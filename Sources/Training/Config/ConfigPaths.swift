import Foundation
import ModelFormats

/// Checks the files a finetune config names before anything loads, so that a typo is reported
/// against the config (file, line, key) with the nearest existing name, not later as a bare
/// "no such file" from the data loader.
///
/// Usage: `try ConfigPaths.check(config, source: "configs/x.yaml", text: yamlText)`
public enum ConfigPaths {
    /// Throws `ConfigError.missingFiles` listing every named input that is missing.
    public static func check(_ config: RunConfig, source: String, text: String?) throws {
        var named: [(key: String, path: String)] = [("model.path", config.model.path), ("data.train", config.data.train)]
        named += config.data.mix.enumerated().map { ("data.mix[\($0.offset)].path", $0.element.path) }
        if let v = config.data.validation { named.append(("data.validation", v)) }
        if let t = config.data.test { named.append(("data.test", t)) }
        var problems: [String] = []
        for (key, path) in named where !FileManager.default.fileExists(atPath: path) {
            let line = text.flatMap { lineNumber(of: path, in: $0) }
            let at = line.map { "\(source):\($0)" } ?? source
            var message = "\(at): \(key): '\(ErrorText.bounded(path, limit: 200))' does not exist"
            if key == "model.path", looksLikeHubID(path) {
                message += "; it looks like a Hugging Face Hub id, but nothing is downloaded: give a local GGUF file or safetensors directory (scripts/fetch-model.sh fetches the default model)"
            } else if let near = nearestSibling(of: path) {
                message += "; did you mean '\(near)'?"
            }
            problems.append(message)
        }
        if !problems.isEmpty { throw ConfigError.missingFiles(problems) }
    }

    /// "org/name" with no such file: what `from_pretrained` would download.
    static func looksLikeHubID(_ path: String) -> Bool {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return parts.count == 2 && !path.hasPrefix(".") && parts.allSatisfy { !$0.isEmpty && !$0.contains(".gguf") }
            && !FileManager.default.fileExists(atPath: String(parts[0]))
    }

    /// The closest existing name in the nearest existing parent directory, as a path.
    static func nearestSibling(of path: String) -> String? {
        var components = (path as NSString).pathComponents
        guard !components.isEmpty else { return nil }
        var prefix: [String] = []
        var i = 0
        while i < components.count {
            let candidate = NSString.path(withComponents: prefix + [components[i]])
            if FileManager.default.fileExists(atPath: candidate) { prefix.append(components[i]); i += 1; continue }
            let directory = prefix.isEmpty ? "." : NSString.path(withComponents: prefix)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard let near = KeySuggestion.nearest(to: components[i], among: names, byPrefix: false) else { return nil }
            components[i] = near
            prefix.append(near)
            i += 1
        }
        let suggestion = NSString.path(withComponents: prefix)
        return FileManager.default.fileExists(atPath: suggestion) ? suggestion : nil
    }

    static func lineNumber(of value: String, in text: String) -> Int? {
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(value) {
            return i + 1
        }
        return nil
    }
}
