# nccltune configure --mode inference for gb200-tray-07 (NCCL 2.27.3)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1'
# inference-max-ctas-sm100: inference on Blackwell (sm100): cap NCCL at 32 CTAs, the NVLS channel count NCCL uses across nodes (24 on one node), so the cap leaves SMs to compute on ring/tree kernels without cutting NVLS; a cap of 16 would. Our choice, not an NVIDIA figure: measure with `nccltune bench`, override with --rules
export NCCL_MAX_CTAS='32'
