// LoRA adapters (in progress)
