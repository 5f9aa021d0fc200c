import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// How the process allocates large tensors.
///
/// glibc raises its mmap threshold each time a large block is freed, after which large
/// tensors are carved from the heap; a training step's mix of sizes then fragments the heap
/// and peak RSS grows well past the bytes actually live (1.60 GB instead of 1.26 GB for a
/// bf16 LoRA step at 4 x 128 on SmolLM2, measured with thoughtcrime-bench). A fixed 1 MB
/// threshold sends every large tensor straight to mmap and back to the OS when freed.
///
/// Usage (first lines of `main`): `AllocatorPolicy.apply()`
public enum AllocatorPolicy {
    /// Blocks of at least this many bytes are mapped individually.
    public static let mmapThreshold: Int32 = 1 << 20

    /// Fixes glibc's mmap threshold unless the user set MALLOC_MMAP_THRESHOLD_ themselves.
    public static func apply() {
        #if canImport(Glibc)
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil { _ = tc_set_mmap_threshold(mmapThreshold) }
        #endif
    }
}
