# nccltune configure --mode training for gb200-tray-07 (NCCL 2.27.3)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1'
