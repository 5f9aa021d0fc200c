// swift-tools-version:5.9
// libFuzzer harnesses for ThoughtCrime's parsers. Built apart from the main package, with
// its own scratch path, because every module is compiled with -sanitize=fuzzer,address:
//   bash scripts/fuzz.sh TARGET SECONDS     (see docs/reliability.md)
import PackageDescription

let package = Package(
    name: "ThoughtCrimeFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "ThoughtCrime", path: "..")],
    targets: [
        .executableTarget(
            name: "ThoughtCrimeFuzz",
            dependencies: [
                .product(name: "ModelFormats", package: "ThoughtCrime"),
                .product(name: "Tokenizers", package: "ThoughtCrime"),
                .product(name: "Training", package: "ThoughtCrime"),
                .product(name: "Evaluation", package: "ThoughtCrime"),
            ],
            // libFuzzer supplies main().
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)
