# nccltune configure --mode training for roce-h100-c03 (NCCL 2.19.3)
# roce-hca-exact: exact list (=) of the active RoCE rail ports (the fastest Ethernet RDMA ports); slower front-end ports stay out
export NCCL_IB_HCA='=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1,mlx5_4:1,mlx5_5:1,mlx5_6:1,mlx5_7:1'
# roce-gid-index: NCCL before 2.21 uses GID index 0 on RoCE; this is the RoCE v2 IPv4 entry read from the ports' GID tables (2.21+ picks it itself and the variable should not be set)
export NCCL_IB_GID_INDEX='3'
# roce-lossless-tc: RoCE rails with PFC and ECN on one priority: set NCCL's traffic class to a DSCP the NIC maps to that priority (DSCP << 2; DSCP 26 when it is one of them), so NCCL's traffic is the lossless, congestion-controlled class and not the default class 0. Assumes the switches classify by the same DSCP; NCCL_IB_SL is not set (on RoCE the priority comes from the DSCP under DSCP trust)
export NCCL_IB_TC='104'
