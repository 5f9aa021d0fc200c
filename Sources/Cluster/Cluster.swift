import CMPI
import Foundation

/// The processes of one job and the few collective operations the toolkit needs, over Open
/// MPI when the process was started by `mpirun` (or Slurm's `srun --mpi=pmix`), else a single
/// rank whose collectives return their input, so every command runs the same code either way.
///
/// MPI is started on first use of `shared` and only when a launcher started the process: a
/// plain `thoughtcrime finetune` never initialises MPI, and neither does a child process the
/// toolkit starts itself (which inherits the launcher's environment). Only the thread that
/// started it calls MPI (`MPI_THREAD_FUNNELED`); the thread pool never does.
///
/// Usage:
/// ```
/// let cluster = Cluster.shared
/// cluster.allreduceSum(gradients.pointer, count: gradients.count)   // every rank gets the sum
/// if cluster.isRoot { try writeCheckpoint() }
/// ```
public final class Cluster: @unchecked Sendable {
    /// This process's rank in 0..<size.
    public let rank: Int
    /// Number of processes in the job.
    public let size: Int
    /// Rank and number of the job's processes on this machine.
    public let localRank: Int
    public let localSize: Int
    private let usesMPI: Bool
    private var finished = false
    /// Each rank's host, for messages about a lost rank.
    public private(set) var hosts: [String] = ["localhost"]
    /// How long a collective may wait for the other ranks before the job stops naming the ones
    /// that never arrived (THOUGHTCRIME_MPI_TIMEOUT seconds); nil, the default, waits as long as
    /// it takes. A deadline cannot tell a lost rank from one still busy with a longer share
    /// (an uneven evaluation), so it is set by whoever knows the job's largest imbalance.
    public private(set) var collectiveTimeout: Double?
    private var collectiveCount: Int32 = 0

    /// Rank 0: the one that writes files and talks to the user.
    public var isRoot: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// The job this process belongs to; MPI starts here when a launcher started the process.
    public static let shared: Cluster = {
        do {
            let cluster = try Cluster(environment: ProcessInfo.processInfo.environment)
            startedShared = cluster
            return cluster
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }()

    /// `shared` once something has used it; nil before, so error handling can ask whether a
    /// job is running without starting MPI.
    nonisolated(unsafe) public private(set) static var startedShared: Cluster?

    /// A job of one process, for tests and for commands that never distribute.
    public static let single = Cluster(rank: 0, size: 1)

    private init(rank: Int, size: Int, localRank: Int = 0, localSize: Int = 1, usesMPI: Bool = false, collectiveTimeout: Double? = nil) {
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.usesMPI = usesMPI
        self.collectiveTimeout = collectiveTimeout
    }

    /// THOUGHTCRIME_MPI_TIMEOUT as seconds; nil (no deadline) when unset.
    static func collectiveTimeout(_ e: [String: String]) throws -> Double? {
        guard let text = e["THOUGHTCRIME_MPI_TIMEOUT"] else { return nil }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 1, seconds <= 86_400 else {
            throw ClusterError.badTimeout(text)
        }
        return seconds
    }

    convenience init(environment: [String: String]) throws {
        switch ClusterLaunch(environment: environment) {
        case .single:
            self.init(rank: 0, size: 1)
            return
        case let .plainSrun(tasks):
            throw ClusterError.launcherWithoutMPI(tasks: tasks)
        case .mpi:
            break
        }
        var provided: Int32 = 0
        let status = MPI_Init_thread(nil, nil, tc_mpi_thread_funneled(), &provided)
        guard status == tc_mpi_success() else { throw ClusterError.mpiFailed(call: "MPI_Init_thread", code: status) }
        if provided < tc_mpi_thread_funneled() {
            // Only the main thread calls MPI, which FUNNELED promises is safe; a library
            // built without thread support gives less, and has worked here regardless.
            FileHandle.standardError.write(Data("warning: this MPI library offers thread level \(provided), below MPI_THREAD_FUNNELED\n".utf8))
        }
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(tc_mpi_comm_world(), &r)
        MPI_Comm_size(tc_mpi_comm_world(), &n)
        let local = ClusterLaunch.localLayout(environment)
        self.init(rank: Int(r), size: Int(n), localRank: local?.rank ?? 0, localSize: local?.size ?? 1, usesMPI: true,
                  collectiveTimeout: try Self.collectiveTimeout(environment))
        hosts = gatherHostNames()
        // Every rank must send arrival tokens or none: the largest setting any rank has applies to
        // all (mpirun passes the environment to remote ranks only with -x).
        var seconds = collectiveTimeout ?? 0
        check(MPI_Allreduce(tc_mpi_in_place(), &seconds, 1, tc_mpi_double(), tc_mpi_max(), tc_mpi_comm_world()), "MPI_Allreduce")
        collectiveTimeout = seconds > 0 ? seconds : nil
    }

    /// Every rank's processor name (its host), gathered once at start.
    private func gatherHostNames() -> [String] {
        let width = Int(tc_mpi_max_processor_name())
        var mine = [CChar](repeating: 0, count: width)
        var length: Int32 = 0
        MPI_Get_processor_name(&mine, &length)
        var all = [CChar](repeating: 0, count: width * size)
        check(MPI_Allgather(&mine, Int32(width), tc_mpi_byte(), &all, Int32(width), tc_mpi_byte(), tc_mpi_comm_world()), "MPI_Allgather")
        return (0..<size).map { r in
            let bytes = all[(r * width)..<((r + 1) * width)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Ends MPI cleanly (every rank must call it once its part is done); a process that exits
    /// without it makes the launcher stop the whole job, which is what an error should do.
    public func finish() {
        guard usesMPI, !finished else { return }
        finished = true
        MPI_Finalize()
    }

    /// Stops every process of the job at once (after an error on this rank, so the others do
    /// not wait for it in a collective forever).
    public func abort(code: Int32) -> Never {
        if usesMPI && !finished { MPI_Abort(tc_mpi_comm_world(), code) }
        exit(code)
    }

    // MARK: Collectives (every rank must call them, in the same order)

    /// Replaces `count` floats at `buffer` with their sum over all ranks, identical on every rank.
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard usesMPI, size > 1 else { return }
        var offset = 0
        while offset < count {
            let n = min(count - offset, Int(Int32.max))
            watched("MPI_Allreduce") { MPI_Iallreduce(tc_mpi_in_place(), buffer + offset, Int32(n), tc_mpi_float(), tc_mpi_sum(), tc_mpi_comm_world(), $0) }
            offset += n
        }
    }

    /// Every rank's `count` floats at `source`, in rank order, into `destination` (room for
    /// `count x size` floats) on every rank.
    public func allgather(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        guard usesMPI, size > 1 else {
            destination.update(from: source, count: count)
            return
        }
        guard count <= Int(Int32.max) else { fatalError("Cluster.allgather: more than 2^31 floats per rank") }
        watched("MPI_Allgather") {
            MPI_Iallgather(source, Int32(count), tc_mpi_float(), destination, Int32(count), tc_mpi_float(), tc_mpi_comm_world(), $0)
        }
    }

    /// The element-wise sum of `values` over all ranks.
    public func allreduceSum(_ values: [Double]) -> [Double] { allreduce(values, tc_mpi_sum()) }

    /// The element-wise maximum of `values` over all ranks.
    public func allreduceMax(_ values: [Double]) -> [Double] { allreduce(values, tc_mpi_max()) }

    private func allreduce(_ values: [Double], _ op: MPI_Op) -> [Double] {
        guard usesMPI, size > 1, !values.isEmpty else { return values }
        var out = values
        out.withUnsafeMutableBufferPointer { b in
            watched("MPI_Allreduce") { MPI_Iallreduce(tc_mpi_in_place(), b.baseAddress, Int32(b.count), tc_mpi_double(), op, tc_mpi_comm_world(), $0) }
        }
        return out
    }

    /// True on every rank when `flag` is true on any (an interrupt one rank received).
    public func any(_ flag: Bool) -> Bool { allreduceMax([flag ? 1 : 0])[0] > 0 }

    /// Root's bytes, on every rank.
    public func broadcast(_ bytes: [UInt8], from root: Int = 0) -> [UInt8] {
        guard usesMPI, size > 1 else { return bytes }
        var count = Int32(rank == root ? bytes.count : 0)
        withUnsafeMutablePointer(to: &count) { c in
            watched("MPI_Bcast") { MPI_Ibcast(c, 1, tc_mpi_int(), Int32(root), tc_mpi_comm_world(), $0) }
        }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        out.withUnsafeMutableBytes { b in
            watched("MPI_Bcast") { MPI_Ibcast(b.baseAddress, count, tc_mpi_byte(), Int32(root), tc_mpi_comm_world(), $0) }
        }
        return out
    }

    /// Every rank's bytes, in rank order, on `root`; nil on the other ranks.
    public func gather(_ bytes: [UInt8], to root: Int = 0) -> [[UInt8]]? {
        guard usesMPI, size > 1 else { return [bytes] }
        var count = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        withUnsafeMutablePointer(to: &count) { mine in
            counts.withUnsafeMutableBufferPointer { c in
                watched("MPI_Gather") { MPI_Igather(mine, 1, tc_mpi_int(), c.baseAddress, 1, tc_mpi_int(), Int32(root), tc_mpi_comm_world(), $0) }
            }
        }
        var displacements = [Int32](repeating: 0, count: size)
        var total = 0
        if rank == root {
            for i in 0..<size {
                guard total <= Int(Int32.max) else { fatalError("Cluster.gather: more than 2 GiB gathered") }
                displacements[i] = Int32(total)
                total += Int(counts[i])
            }
        }
        var received = [UInt8](repeating: 0, count: rank == root ? total : 0)
        var sent = bytes
        sent.withUnsafeMutableBytes { s in
            received.withUnsafeMutableBytes { r in
                counts.withUnsafeBufferPointer { c in
                    displacements.withUnsafeBufferPointer { d in
                        watched("MPI_Gatherv") {
                            MPI_Igatherv(s.baseAddress, count, tc_mpi_byte(), r.baseAddress, c.baseAddress, d.baseAddress, tc_mpi_byte(),
                                         Int32(root), tc_mpi_comm_world(), $0)
                        }
                    }
                }
            }
        }
        guard rank == root else { return nil }
        return (0..<size).map { Array(received[Int(displacements[$0])..<Int(displacements[$0]) + Int(counts[$0])]) }
    }

    /// Waits until every rank has called it.
    public func barrier() {
        guard usesMPI, size > 1 else { return }
        watched("MPI_Barrier") { MPI_Ibarrier(tc_mpi_comm_world(), $0) }
    }

    /// Token messages saying "this rank reached collective #k", one to every other rank, so
    /// that a collective that never completes can name the ranks that never arrived.
    private static let arrivalTag: Int32 = 7_301

    /// Starts a nonblocking collective and waits for it, polling, at most `collectiveTimeout`
    /// seconds when one is set. Open MPI does not notice a rank whose network went away (TCP keeps retrying),
    /// so a plain blocking collective would wait for ever; past the deadline the job stops with
    /// an error naming each rank whose arrival token did not come.
    private func watched(_ call: String, _ start: (UnsafeMutablePointer<MPI_Request?>) -> Int32) {
        collectiveCount &+= 1
        // Arrival tokens only name the missing ranks after a deadline; without one they are not sent.
        let peers = collectiveTimeout == nil ? [] : (0..<size).filter { $0 != rank }
        let sent = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        let arrived = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, peers.count))
        let tokens = UnsafeMutablePointer<MPI_Request?>.allocate(capacity: max(1, 2 * peers.count))
        defer { sent.deallocate(); arrived.deallocate(); tokens.deallocate() }
        sent.pointee = collectiveCount
        for (k, peer) in peers.enumerated() {
            arrived[k] = -1
            check(MPI_Irecv(arrived + k, 1, tc_mpi_int(), Int32(peer), Self.arrivalTag, tc_mpi_comm_world(), tokens + k), "MPI_Irecv")
            check(MPI_Isend(sent, 1, tc_mpi_int(), Int32(peer), Self.arrivalTag, tc_mpi_comm_world(), tokens + peers.count + k), "MPI_Isend")
        }
        var request: MPI_Request?
        check(start(&request), call)
        let deadline = collectiveTimeout.map { Date().addingTimeInterval($0) } ?? .distantFuture
        func wait(_ done: () -> Bool) {
            var spins = 0
            while !done() {
                spins += 1
                if spins > 2_000 { usleep(spins > 100_000 ? 1_000 : 50) }
                if spins % 64 == 0, Date() > deadline {
                    let missing = peers.enumerated().filter { k, _ in
                        var flag: Int32 = 0
                        MPI_Test(tokens + k, &flag, tc_mpi_status_ignore())
                        return flag == 0
                    }.map(\.1)
                    lostContact(call: call, missing: missing)
                }
            }
        }
        wait {
            var flag: Int32 = 0
            check(MPI_Test(&request, &flag, tc_mpi_status_ignore()), call)
            return flag != 0
        }
        // Every peer sent its token before entering the collective, which has completed.
        for k in 0..<(2 * peers.count) {
            wait {
                var flag: Int32 = 0
                check(MPI_Test(tokens + k, &flag, tc_mpi_status_ignore()), "MPI_Test")
                return flag != 0
            }
        }
    }

    /// Stops this process at once: MPI cannot end cleanly (MPI_Finalize and MPI_Abort would wait
    /// for the lost rank), and the launcher then stops the ranks it can still reach.
    private func lostContact(call: String, missing: [Int]) -> Never {
        let named = missing.map { "rank \($0) (\(hosts.indices.contains($0) ? hosts[$0] : "?"))" }.joined(separator: ", ")
        let reason = missing.isEmpty
            ? "every rank reached collective #\(collectiveCount) (\(call)) but it did not complete within \(ConfigSeconds.text(collectiveTimeout ?? 0)): the network between the ranks failed"
            : "lost contact with \(named): it did not reach collective #\(collectiveCount) (\(call)) within \(ConfigSeconds.text(collectiveTimeout ?? 0)) (THOUGHTCRIME_MPI_TIMEOUT)"
        let message = "error: rank \(rank) (\(hosts.indices.contains(rank) ? hosts[rank] : "?")): \(reason). The job stops; the run directory keeps its last checkpoint, and `thoughtcrime resume RUN_DIR` continues from it, with any number of processes.\n"
        FileHandle.standardError.write(Data(message.utf8))
        _exit(70)
    }

    /// MPI's default error handler already stops the job on a failed call; this catches the
    /// case where one is set to return instead.
    private func check(_ status: Int32, _ call: String) {
        guard status != tc_mpi_success() else { return }
        FileHandle.standardError.write(Data("error: \(call) failed with MPI error \(status) on rank \(rank)\n".utf8))
        abort(code: 1)
    }
}

/// How the process was started, read from the launcher's environment.
enum ClusterLaunch: Equatable {
    case single
    /// Started by `mpirun` (OMPI_COMM_WORLD_SIZE) or by a PMIx launcher such as
    /// `srun --mpi=pmix` (PMIX_RANK).
    case mpi
    /// Several Slurm tasks without an MPI plugin: each would think it is alone.
    case plainSrun(tasks: Int)

    init(environment e: [String: String]) {
        if e["OMPI_COMM_WORLD_SIZE"] != nil || e["PMIX_RANK"] != nil || e["PMI_RANK"] != nil {
            self = .mpi
        } else if let tasks = e["SLURM_NTASKS"].flatMap(Int.init), tasks > 1, e["SLURM_PROCID"] != nil {
            self = .plainSrun(tasks: tasks)
        } else {
            self = .single
        }
    }

    /// This process's rank and the job's process count on this machine, from the launcher.
    static func localLayout(_ e: [String: String]) -> (rank: Int, size: Int)? {
        if let r = e["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init), let n = e["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) {
            return (r, n)
        }
        if let r = e["SLURM_LOCALID"].flatMap(Int.init), let n = e["SLURM_NTASKS_PER_NODE"].flatMap(Int.init) ?? e["SLURM_TASKS_PER_NODE"].flatMap({ Int($0.prefix { $0.isNumber }) }) {
            return (r, n)
        }
        return nil
    }
}

/// Why the job could not start.
public enum ClusterError: Error, CustomStringConvertible {
    case launcherWithoutMPI(tasks: Int)
    case mpiFailed(call: String, code: Int32)
    case badTimeout(String)

    public var description: String {
        switch self {
        case let .launcherWithoutMPI(tasks):
            return "started as one of \(tasks) Slurm tasks without MPI: each task would train alone. Launch with `srun --mpi=pmix` (or mpirun); docs/distributed.md"
        case let .badTimeout(text):
            return "THOUGHTCRIME_MPI_TIMEOUT is '\(text)': give the seconds a collective may wait for the other ranks, 1 to 86400 (unset: no deadline)"
        case let .mpiFailed(call, code):
            return "\(call) failed with MPI error \(code): is Open MPI installed (libopenmpi-dev, openmpi-bin) and the job started with mpirun?"
        }
    }
}

/// Seconds as a message writes them: "5 s", "2.5 s".
enum ConfigSeconds {
    static func text(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
