// Training: datasets, rendering, optimiser, schedules, trainer, HDF5 checkpoints (in progress).
