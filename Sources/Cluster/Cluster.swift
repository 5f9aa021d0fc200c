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

    private init(rank: Int, size: Int, localRank: Int = 0, localSize: Int = 1, usesMPI: Bool = false) {
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.usesMPI = usesMPI
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
        self.init(rank: Int(r), size: Int(n), localRank: local?.rank ?? 0, localSize: local?.size ?? 1, usesMPI: true)
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
            check(MPI_Allreduce(tc_mpi_in_place(), buffer + offset, Int32(n), tc_mpi_float(), tc_mpi_sum(), tc_mpi_comm_world()), "MPI_Allreduce")
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
        check(MPI_Allgather(source, Int32(count), tc_mpi_float(), destination, Int32(count), tc_mpi_float(), tc_mpi_comm_world()),
              "MPI_Allgather")
    }

    /// The element-wise sum of `values` over all ranks.
    public func allreduceSum(_ values: [Double]) -> [Double] { allreduce(values, tc_mpi_sum()) }

    /// The element-wise maximum of `values` over all ranks.
    public func allreduceMax(_ values: [Double]) -> [Double] { allreduce(values, tc_mpi_max()) }

    private func allreduce(_ values: [Double], _ op: MPI_Op) -> [Double] {
        guard usesMPI, size > 1, !values.isEmpty else { return values }
        var out = values
        out.withUnsafeMutableBufferPointer { b in
            check(MPI_Allreduce(tc_mpi_in_place(), b.baseAddress, Int32(b.count), tc_mpi_double(), op, tc_mpi_comm_world()), "MPI_Allreduce")
        }
        return out
    }

    /// True on every rank when `flag` is true on any (an interrupt one rank received).
    public func any(_ flag: Bool) -> Bool { allreduceMax([flag ? 1 : 0])[0] > 0 }

    /// Root's bytes, on every rank.
    public func broadcast(_ bytes: [UInt8], from root: Int = 0) -> [UInt8] {
        guard usesMPI, size > 1 else { return bytes }
        var count = Int32(rank == root ? bytes.count : 0)
        check(MPI_Bcast(&count, 1, tc_mpi_int(), Int32(root), tc_mpi_comm_world()), "MPI_Bcast")
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        out.withUnsafeMutableBytes { b in
            check(MPI_Bcast(b.baseAddress, count, tc_mpi_byte(), Int32(root), tc_mpi_comm_world()), "MPI_Bcast")
        }
        return out
    }

    /// Every rank's bytes, in rank order, on `root`; nil on the other ranks.
    public func gather(_ bytes: [UInt8], to root: Int = 0) -> [[UInt8]]? {
        guard usesMPI, size > 1 else { return [bytes] }
        var count = Int32(bytes.count)
        var counts = [Int32](repeating: 0, count: size)
        check(MPI_Gather(&count, 1, tc_mpi_int(), &counts, 1, tc_mpi_int(), Int32(root), tc_mpi_comm_world()), "MPI_Gather")
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
                check(MPI_Gatherv(s.baseAddress, count, tc_mpi_byte(), r.baseAddress, &counts, &displacements, tc_mpi_byte(),
                                  Int32(root), tc_mpi_comm_world()), "MPI_Gatherv")
            }
        }
        guard rank == root else { return nil }
        return (0..<size).map { Array(received[Int(displacements[$0])..<Int(displacements[$0]) + Int(counts[$0])]) }
    }

    /// Waits until every rank has called it.
    public func barrier() {
        guard usesMPI, size > 1 else { return }
        check(MPI_Barrier(tc_mpi_comm_world()), "MPI_Barrier")
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

    public var description: String {
        switch self {
        case let .launcherWithoutMPI(tasks):
            return "started as one of \(tasks) Slurm tasks without MPI: each task would train alone. Launch with `srun --mpi=pmix` (or mpirun); docs/distributed.md"
        case let .mpiFailed(call, code):
            return "\(call) failed with MPI error \(code): is Open MPI installed (libopenmpi-dev, openmpi-bin) and the job started with mpirun?"
        }
    }
}
