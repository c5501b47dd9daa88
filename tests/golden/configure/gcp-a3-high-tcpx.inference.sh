# nccltune configure --mode inference for a3high-node-1 (NCCL 2.21.5)
# inference-max-ctas: inference shares the GPU with the model: cap NCCL at 16 CTAs (channels) so more SMs stay with compute; costs bandwidth on large ring/tree messages. NVLS uses 16 channels on sm90 (Hopper), so there the cap does not cut NVLS; NCCL_MAX_CTAS also caps NVLS channels, which are 24 (one node) or 32 (several) on sm100. Our choice, not an NVIDIA figure: measure with `nccltune bench`, override with --rules
export NCCL_MAX_CTAS='16'
