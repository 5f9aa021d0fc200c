import ArgumentParser
import Foundation
import ModelFormats
import Models

/// `thoughtcrime tokenize`: shows how a model's tokenizer splits text.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print token ids and pieces of a text or file.")

    @OptionGroup var modelOption: TokenizerModelOption

    @Argument(help: "Text to tokenize (or use --file).")
    var text: String?

    @Option(help: "Read the text from this file.")
    var file: String?

    @Flag(name: .customLong("no-special"), help: "Treat special-token strings such as <|im_end|> as plain text.")
    var noSpecial = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let input: String
        if let file {
            let data: Data
            do { data = try InputFile.read(file) } catch let problem as InputFile.Problem {
                throw ValidationError("\(file): cannot read the file: \(problem.reason)")
            }
            input = String(decoding: data, as: UTF8.self)
        } else if let text {
            input = text
        } else {
            throw ValidationError("give a text or --file")
        }
        guard FileManager.default.fileExists(atPath: modelOption.model) else { throw MissingModelError(path: modelOption.model) }
        let (tokenizer, _) = try ModelLoader.loadTokenizer(path: modelOption.model)
        let ids = tokenizer.encode(input, parseSpecialTokens: !noSpecial)
        let pieces = try ids.map { try tokenizer.tokenPiece($0) }
        if json {
            try printJSON(["ids": ids.map(Int.init), "pieces": pieces, "count": ids.count])
            return
        }
        for (id, piece) in zip(ids, pieces) {
            print(String(format: "%6d  ", id) + piece.debugDescription)
        }
        print("\(ids.count) tokens")
    }
}
