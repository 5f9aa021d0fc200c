// ModelFormats: GGUF and safetensors readers/writers, HF config.json (in progress).
