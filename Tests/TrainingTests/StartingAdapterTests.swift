import Foundation
import LoRA
import Models
import Training
import XCTest

/// `model.adapter`: a finetune that starts from an exported (or any readable) adapter.
final class StartingAdapterTests: TinyRunTestCase {
    /// Trains a first run and exports its adapter as PEFT.
    func exportFirstRun() throws -> (Trainer, String) {
        let first = try Trainer(config: try TinyRun.config(dir: dir, name: "first", overrides: ["training.max_steps=3"]), progress: TinyRun.Silent())
        try first.run()
        let source = try AdapterSource.load(path: "\(dir)/runs/first", modelConfig: nil)
        XCTAssertEqual(source.kind, .checkpoint)
        XCTAssertEqual(source.baseModel, "\(dir)/tiny.gguf")
        try PEFTAdapterWriter.write(source.weights, to: "\(dir)/peft", layerCount: 2)
        return (first, "\(dir)/peft")
    }

    func testAFinetuneStartsFromAnExportedPEFTAdapterAndResumesWithoutIt() throws {
        let (first, peft) = try exportFirstRun()
        let config = try TinyRun.config(dir: dir, name: "second", overrides: ["model.adapter=\(peft)", "training.max_steps=4"])
        let second = try Trainer(config: config, progress: TinyRun.Silent())
        XCTAssertEqual(adapterValues(second), adapterValues(first), "training starts from the exported adapter's weights")
        XCTAssertLessThan(try second.validationLoss(), try Trainer(config: try TinyRun.config(dir: dir, name: "fresh"), progress: TinyRun.Silent()).validationLoss())

        try second.run(stopAfter: 2)
        // Resuming reads the checkpoint, not the starting adapter, which may be gone by then.
        try FileManager.default.removeItem(atPath: peft)
        let resumed = try Trainer.resume(runDirectory: "\(dir)/runs/second", progress: TinyRun.Silent())
        XCTAssertEqual(resumed.step, 2)
        XCTAssertEqual(try resumed.run().stepsCompleted, 4)
    }

    func testAStartingAdapterWithOtherSettingsIsRefusedListingEachDifference() throws {
        let (_, peft) = try exportFirstRun()
        let config = try TinyRun.config(dir: dir, name: "second", overrides: [
            "model.adapter=\(peft)", "lora.rank=8", "lora.target_modules=[q_proj, v_proj]",
        ])
        XCTAssertThrowsError(try Trainer(config: config, progress: TinyRun.Silent())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("lora.rank: adapter 4, config 8 (--set lora.rank=4)"), message)
            XCTAssertTrue(message.contains("lora.target_modules: adapter [q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj], config [q_proj,v_proj]"), message)
            XCTAssertFalse(message.contains("lora.alpha"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/runs/second"))
    }
}
