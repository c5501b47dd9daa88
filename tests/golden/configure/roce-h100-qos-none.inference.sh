# nccltune configure --mode inference for roce-h100-c04 (NCCL 2.19.3)
# roce-hca-exact: exact list (=) of the active RoCE rail ports (the fastest Ethernet RDMA ports); slower front-end ports stay out
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1'
# roce-gid-index: NCCL before 2.21 uses GID index 0 on RoCE; this is the RoCE v2 IPv4 entry read from the ports' GID tables (2.21+ picks it itself and the variable should not be set)
export NCCL_IB_GID_INDEX='3'
# inference-max-ctas: inference shares the GPU with the model: cap NCCL at 16 CTAs (channels) so more SMs stay with compute; costs bandwidth on large ring/tree messages. NVLS uses 16 channels on sm90 (Hopper), so there the cap does not cut NVLS; NCCL_MAX_CTAS also caps NVLS channels, which are 24 (one node) or 32 (several) on sm100. Our choice, not an NVIDIA figure: measure with `nccltune bench`, override with --rules
export NCCL_MAX_CTAS='16'
