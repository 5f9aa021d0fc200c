import Foundation
import ModelFormats
import XCTest

/// Issue 29, item 7: the data-parallel job between two hosts, not one loopback. The test makes
/// two network namespaces joined by a veth pair, so the ranks reach each other only over that
/// link, and Open MPI starts the second rank in the second namespace through an rsh agent
/// (`ip netns exec`). Skipped, saying so, where the machine refuses namespaces.
final class TwoHostDataParallelTests: XCTestCase {
    /// Two network namespaces, A (where mpirun runs) and B, joined by a veth pair.
    struct TwoHosts {
        let a: String, b: String
        let vethA: String, vethB: String
        let addressA: String, addressB: String, subnet: String
        let agent: String

        static func ip(_ arguments: [String]) throws -> (status: Int32, output: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = arguments
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, output)
        }

        static func make(scratch: String) throws -> TwoHosts {
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") else { throw XCTSkip("iproute2 is not installed (apt-get install iproute2)") }
            let id = Int(getpid()) % 60_000
            let octet = id % 250 + 1
            let hosts = TwoHosts(a: "tc\(id)a", b: "tc\(id)b", vethA: "tcv\(id)a", vethB: "tcv\(id)b",
                                 addressA: "10.231.\(octet).1", addressB: "10.231.\(octet).2", subnet: "10.231.\(octet).0/24",
                                 agent: "\(scratch)/netns-agent.sh")
            let first = try ip(["netns", "add", hosts.a])
            guard first.status == 0 else { throw XCTSkip("this machine refuses network namespaces (ip netns add: \(first.output.trimmingCharacters(in: .whitespacesAndNewlines)))") }
            do {
                for command in [["netns", "add", hosts.b],
                                ["link", "add", hosts.vethA, "type", "veth", "peer", "name", hosts.vethB],
                                ["link", "set", hosts.vethA, "netns", hosts.a], ["link", "set", hosts.vethB, "netns", hosts.b],
                                ["-n", hosts.a, "addr", "add", hosts.addressA + "/24", "dev", hosts.vethA],
                                ["-n", hosts.b, "addr", "add", hosts.addressB + "/24", "dev", hosts.vethB],
                                ["-n", hosts.a, "link", "set", hosts.vethA, "up"], ["-n", hosts.b, "link", "set", hosts.vethB, "up"],
                                ["-n", hosts.a, "link", "set", "lo", "up"], ["-n", hosts.b, "link", "set", "lo", "up"]] {
                    let r = try ip(command)
                    guard r.status == 0 else { throw XCTSkip("this machine refuses a veth pair between namespaces (ip \(command.joined(separator: " ")): \(r.output))") }
                }
            } catch {
                hosts.remove()
                throw error
            }
            // Open MPI starts the remote daemon through this agent, as it would through ssh.
            try """
            #!/bin/sh
            host="$1"; shift
            case "$host" in
              \(hosts.addressA)) ns=\(hosts.a) ;;
              \(hosts.addressB)) ns=\(hosts.b) ;;
              *) echo "netns-agent: unknown host $host" >&2; exit 1 ;;
            esac
            exec /usr/sbin/ip netns exec "$ns" /bin/sh -c "$*"
            """.write(toFile: hosts.agent, atomically: true, encoding: .utf8)
            chmod(hosts.agent, 0o755)
            return hosts
        }

        /// Cuts the link: B's end goes down, as a pulled cable.
        func cut() throws {
            let r = try Self.ip(["-n", b, "link", "set", vethB, "down"])
            XCTAssertEqual(r.status, 0, r.output)
        }

        /// Kills what still runs in the namespaces and removes them (the veth pair goes with them).
        func remove() {
            for ns in [a, b] {
                if let pids = try? Self.ip(["netns", "pids", ns]).output {
                    for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
                }
                _ = try? Self.ip(["netns", "del", ns])
            }
        }

        /// mpirun in A with one rank on each host, every byte between them over the veth pair.
        func launcher(environment: [String]) -> [String] {
            ["/usr/sbin/ip", "netns", "exec", a, DataParallelScratch.mpirun, "--mca", "plm_rsh_agent", agent,
             "--host", "\(addressA):1,\(addressB):1", "-np", "2", "--bind-to", "none",
             "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", subnet, "--mca", "oob_tcp_if_include", subnet]
                + environment.flatMap { ["-x", $0] }
        }
    }

    var parallel = DataParallelScratch(scratch: "")
    var scratch: String { parallel.scratch }
    var hosts: TwoHosts?

    override func setUpWithError() throws {
        guard geteuid() == 0 else { throw XCTSkip("network namespaces need root") }
        guard FileManager.default.isExecutableFile(atPath: DataParallelScratch.mpirun) else {
            throw XCTSkip("Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev; scripts/install-deps.sh does it)")
        }
        parallel = try DataParallelScratch.make()
        hosts = try TwoHosts.make(scratch: scratch)
    }

    override func tearDownWithError() throws {
        hosts?.remove()
        parallel.remove()
    }

    /// Each rank computes with one thread, as the one-process runs compared with it do.
    var environment: [String: String] {
        var e = ProcessInfo.processInfo.environment
        e["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        e["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        e["THOUGHTCRIME_THREADS"] = "1"
        return e
    }

    func testTwoRanksOnTwoHostsTrainTheAdapterOneProcessTrains() throws {
        let hosts = try XCTUnwrap(hosts)
        let one = try parallel.single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=single"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try CLI.run(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=twohosts"],
                              environment: environment, launcher: hosts.launcher(environment: ["THOUGHTCRIME_THREADS"]))
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(try parallel.adapter("twohosts"), try parallel.adapter("single"), "bitwise, across the link")
        XCTAssertEqual(try parallel.losses("twohosts"), try parallel.losses("single"))
    }

    func testCuttingTheLinkStopsTheJobNamingTheLostRankAndResumeOnOneHostContinuesBitwise() throws {
        let hosts = try XCTUnwrap(hosts)
        let steps = ["--set", "training.max_steps=24", "--set", "checkpoint.every=2", "--set", "training.eval_every=0"]
        let straight = try parallel.single(["finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=straight"] + steps)
        XCTAssertEqual(straight.status, 0, straight.stderr)

        var environment = self.environment
        environment["THOUGHTCRIME_MPI_TIMEOUT"] = "5"
        // Open MPI's own daemons notice a dead link only through TCP keepalives, five minutes
        // idle by default; docs/distributed.md gives these settings for jobs across machines.
        environment["OMPI_MCA_oob_tcp_keepalive_time"] = "2"
        environment["OMPI_MCA_oob_tcp_keepalive_intvl"] = "1"
        environment["OMPI_MCA_oob_tcp_keepalive_probes"] = "3"
        let launcher = hosts.launcher(environment: ["THOUGHTCRIME_THREADS", "THOUGHTCRIME_MPI_TIMEOUT"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher[0])
        process.arguments = Array(launcher.dropFirst()) + [try CLI.binary().path, "finetune", "--config", "\(scratch)/run.yaml", "--set", "run.name=cut"] + steps
        process.environment = environment
        let errorLog = "\(scratch)/cut.stderr"
        FileManager.default.createFile(atPath: errorLog, contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorLog))
        try process.run()
        let metrics = "\(scratch)/runs/cut/metrics.jsonl"
        var deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning, ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < 5 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertTrue(process.isRunning, "the job ended before the link was cut: \(String(decoding: FileManager.default.contents(atPath: errorLog) ?? Data(), as: UTF8.self))")
        try hosts.cut()
        let cutAt = Date()
        deadline = cutAt.addingTimeInterval(120)
        while Date() < deadline, process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        let stoppedWithin = Date().timeIntervalSince(cutAt)
        if process.isRunning { hosts.remove(); process.terminate() }
        process.waitUntilExit()
        let stderr = String(decoding: FileManager.default.contents(atPath: errorLog) ?? Data(), as: UTF8.self)
        print("link cut: the job stopped \(String(format: "%.1f", stoppedWithin)) s later with status \(process.terminationStatus)")
        XCTAssertLessThan(stoppedWithin, 120, "the job did not stop after the link was cut")
        XCTAssertNotEqual(process.terminationStatus, 0)
        print(stderr)
        XCTAssertTrue(stderr.contains("lost contact with rank 1"), stderr)
        XCTAssertTrue(stderr.contains("thoughtcrime resume"), stderr)

        // On one host, one process: the run continues from its last checkpoint to the end.
        let resumed = try parallel.single(["resume", "\(scratch)/runs/cut"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("steps: 24/24"), resumed.stdout)
        XCTAssertEqual(try parallel.adapter("cut"), try parallel.adapter("straight"), "bitwise after the resume")
    }
}
