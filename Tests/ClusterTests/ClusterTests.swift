@testable import Cluster
import Tensors
import XCTest

/// How a process finds out it is one of several, and what one process alone does with the
/// collectives. The collectives across processes are tested through `mpirun` in CLITests
/// (DataParallelCommandTests).
final class ClusterLaunchTests: XCTestCase {
    func testCollectivesHaveADeadlineOnlyWhenTheEnvironmentSetsOne() throws {
        XCTAssertNil(try Cluster.collectiveTimeout([:]))
        XCTAssertEqual(try Cluster.collectiveTimeout(["THOUGHTCRIME_MPI_TIMEOUT": "5"]), 5)
        for bad in ["0", "-3", "nan", "five", "100000"] {
            XCTAssertThrowsError(try Cluster.collectiveTimeout(["THOUGHTCRIME_MPI_TIMEOUT": bad]), bad) { error in
                XCTAssertTrue("\(error)".contains("THOUGHTCRIME_MPI_TIMEOUT is '\(bad)'"), "\(error)")
            }
        }
    }

    func testAPlainProcessIsASingleRankAndNeverStartsMPI() {
        XCTAssertEqual(ClusterLaunch(environment: ["HOME": "/root"]), .single)
        XCTAssertEqual(ClusterLaunch(environment: ["SLURM_NTASKS": "1", "SLURM_PROCID": "0"]), .single)
    }

    func testMpirunAndPMIxLaunchersAreRecognised() {
        XCTAssertEqual(ClusterLaunch(environment: ["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"]), .mpi)
        XCTAssertEqual(ClusterLaunch(environment: ["PMIX_RANK": "3", "SLURM_NTASKS": "4", "SLURM_PROCID": "3"]), .mpi)
    }

    func testSlurmTasksWithoutMPIAreRefusedInsteadOfTrainingAlone() throws {
        XCTAssertEqual(ClusterLaunch(environment: ["SLURM_NTASKS": "4", "SLURM_PROCID": "2"]), .plainSrun(tasks: 4))
        XCTAssertThrowsError(try Cluster(environment: ["SLURM_NTASKS": "4", "SLURM_PROCID": "2"])) { error in
            XCTAssertTrue("\(error)".contains("srun --mpi=pmix"), "\(error)")
        }
    }

    func testLocalLayoutComesFromTheLauncher() {
        XCTAssertEqual(ClusterLaunch.localLayout(["OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"])?.size, 4)
        XCTAssertEqual(ClusterLaunch.localLayout(["SLURM_LOCALID": "0", "SLURM_TASKS_PER_NODE": "8(x2)"])?.size, 8)
        XCTAssertNil(ClusterLaunch.localLayout([:]))
    }

    func testThreadsPerProcessShareTheCoresAmongTheProcessesOfTheMachine() {
        XCTAssertEqual(ThreadPool.threadsPerProcess([:], cores: 8, machineCores: 8), 8)
        XCTAssertEqual(ThreadPool.threadsPerProcess(["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], cores: 8, machineCores: 8), 4)
        XCTAssertEqual(ThreadPool.threadsPerProcess(["OMPI_COMM_WORLD_LOCAL_SIZE": "4"], cores: 2, machineCores: 2), 1)
        XCTAssertEqual(ThreadPool.threadsPerProcess(["OMPI_COMM_WORLD_LOCAL_SIZE": "2", "THOUGHTCRIME_THREADS": "3"], cores: 8, machineCores: 8), 3)
    }

    /// mpirun binds each of two processes to its own cores by default: those are its share already.
    func testCoresALauncherBoundTheProcessToAreNotDividedAgain() {
        XCTAssertEqual(ThreadPool.threadsPerProcess(["OMPI_COMM_WORLD_LOCAL_SIZE": "2"], cores: 4, machineCores: 8), 4)
    }
}

final class SingleRankCollectiveTests: XCTestCase {
    let cluster = Cluster.single

    func testOneProcessIsRankZeroOfOne() {
        XCTAssertEqual(cluster.rank, 0)
        XCTAssertEqual(cluster.size, 1)
        XCTAssertTrue(cluster.isRoot)
        XCTAssertFalse(cluster.isDistributed)
    }

    func testCollectivesOfOneProcessReturnItsOwnValues() {
        var floats: [Float] = [1, -2, 3.5]
        floats.withUnsafeMutableBufferPointer { cluster.allreduceSum($0.baseAddress!, count: $0.count) }
        XCTAssertEqual(floats, [1, -2, 3.5])
        XCTAssertEqual(cluster.allreduceSum([2, 4]), [2, 4])
        XCTAssertEqual(cluster.allreduceMax([-1, 7]), [-1, 7])
        XCTAssertTrue(cluster.any(true))
        XCTAssertFalse(cluster.any(false))
        XCTAssertEqual(cluster.broadcast([1, 2, 3]), [1, 2, 3])
        XCTAssertEqual(cluster.gather([9, 8]), [[9, 8]])
        cluster.barrier()
    }
}
