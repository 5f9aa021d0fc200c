import Tensors
OpenBLASCoreSelection.ensureFastKernels()
