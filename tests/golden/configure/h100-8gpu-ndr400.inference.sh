# nccltune configure --mode inference for gpu-h100-017 (NCCL 2.21.5)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1'
# inference-max-ctas: inference shares the GPU with the model: cap NCCL at 16 CTAs (channels) so more SMs stay with compute; costs bandwidth on large ring/tree messages. NVLS uses 16 channels on sm90 (Hopper), so there the cap does not cut NVLS; NCCL_MAX_CTAS also caps NVLS channels, which are 24 (one node) or 32 (several) on sm100. Our choice, not an NVIDIA figure: measure with `nccltune bench`, override with --rules
export NCCL_MAX_CTAS='16'
