# nccltune configure --mode training for dgx-a100-11 (NCCL 2.19.3)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1'
