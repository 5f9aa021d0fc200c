// swift-tools-version:6.0
import PackageDescription

// Layers, each a target; imports only go downward:
//   COpenBLAS, CHDF5, CKernels, CDNNL  <-  Tensors  <-  Autodiff  <-  ... <- thoughtcrime (CLI)
//   CMPI <- Cluster (processes of one job, Open MPI) <- Training
// C kernels are always compiled with optimisation so that debug test builds stay usable.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-ffp-contract=fast", "-fno-math-errno"])]

let package = Package(
    name: "ThoughtCrime",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "thoughtcrime", targets: ["thoughtcrime"]),
        .executable(name: "thoughtcrime-bench", targets: ["ThoughtCrimeBench"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Autodiff", targets: ["Autodiff"]),
        .library(name: "ModelFormats", targets: ["ModelFormats"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "LoRA", targets: ["LoRA"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: kernelFlags),
        .target(name: "Cluster", dependencies: ["CMPI"]),
        // oneDNN (Debian's libdnnl-dev) ships no pkg-config file: the glue links libdnnl directly.
        .target(name: "CDNNL", path: "Sources/CDNNL", cSettings: kernelFlags, linkerSettings: [.linkedLibrary("dnnl")]),
        .target(
            name: "Tensors",
            dependencies: ["COpenBLAS", "CKernels", "CDNNL", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Autodiff", dependencies: ["Tensors", "CKernels", "COpenBLAS"]),
        .target(name: "ModelFormats", dependencies: ["Tensors", "CKernels"]),
        .target(name: "Tokenizers", dependencies: ["ModelFormats"]),
        .target(name: "Models", dependencies: ["Autodiff", "Tensors", "CKernels", "ModelFormats", "Tokenizers"]),
        .target(name: "LoRA", dependencies: ["Models", "Autodiff", "Tensors", "ModelFormats", "Tokenizers"]),
        .target(
            name: "Training",
            dependencies: ["LoRA", "Models", "Autodiff", "Tensors", "CKernels", "CHDF5", "Tokenizers", "ModelFormats", "Cluster", "Yams"]),
        .target(
            name: "Evaluation",
            dependencies: [
                "Training", "LoRA", "Models", "Tokenizers", "ModelFormats", "Autodiff", "Tensors", "Cluster", "Yams",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .executableTarget(
            name: "thoughtcrime",
            dependencies: [
                "Tensors", "Autodiff", "CHDF5", "CDNNL", "CKernels", "Models", "LoRA", "Training", "Tokenizers", "ModelFormats", "Evaluation", "Cluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "ThoughtCrimeBench", dependencies: ["Tensors", "Autodiff", "Models", "Tokenizers", "LoRA", "Training", "Evaluation", "COpenBLAS"],
            path: "Sources/ThoughtCrimeBench"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "COpenBLAS", "CKernels", "CDNNL"]),
        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff", "Tensors", "CKernels"]),
        .testTarget(name: "CHDF5Tests", dependencies: ["CHDF5"]),
        // Runs the built `thoughtcrime` binary as a user would.
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Tensors", "ModelFormats"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster", "Tensors"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "Tensors"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "ModelFormats"], resources: [.copy("Fixtures")]),
        // Shared helpers of the test targets (tiny model files, fixture RNG); not a product.
        .target(name: "TestSupport", dependencies: ["ModelFormats", "Models", "Tensors", "CKernels"], path: "Tests/TestSupport"),
        .testTarget(name: "LoRATests", dependencies: ["TestSupport", "LoRA", "Models", "Autodiff", "Tensors", "ModelFormats", "Tokenizers"],
                    exclude: ["Fixtures"]),  // read by path from the package root
        .testTarget(
            name: "TrainingTests", dependencies: ["TestSupport", "Training", "LoRA", "Models", "Autodiff", "Tensors", "CHDF5", "ModelFormats"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "EvaluationTests",
            dependencies: [
                "Evaluation", "Training", "LoRA", "Models", "Tokenizers", "Tensors", "ModelFormats",
                // Test servers (a flaky endpoint, request counting) beside the real one.
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["TestSupport", "Models", "ModelFormats", "Tokenizers", "Autodiff", "Tensors"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
