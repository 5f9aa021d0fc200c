// Models: Llama/Qwen transformer (in progress).
