# nccltune configure --mode training for roce-h100-c04 (NCCL 2.19.3)
# roce-hca-exact: exact list (=) of the active RoCE rail ports (the fastest Ethernet RDMA ports); slower front-end ports stay out
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1'
# roce-gid-index: NCCL before 2.21 uses GID index 0 on RoCE; this is the RoCE v2 IPv4 entry read from the ports' GID tables (2.21+ picks it itself and the variable should not be set)
export NCCL_IB_GID_INDEX='3'
