# nccltune configure --mode training for gpu-h100-042 (NCCL 2.21.5)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_0:1,mlx5_3:1,mlx5_4:1,mlx5_6:1,mlx5_9:1,mlx5_10:1,mlx5_11:1'
