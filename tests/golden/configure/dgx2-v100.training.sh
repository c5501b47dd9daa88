# nccltune configure --mode training for dgx2-07 (NCCL 2.19.3)
# no-rdma-disable-ib: no active RDMA port: keep NCCL from probing verbs devices and use sockets
export NCCL_IB_DISABLE='1'
