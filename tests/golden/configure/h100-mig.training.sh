# nccltune configure --mode training for gpu-h100-mig-03 (NCCL 2.19.3)
# no-rdma-disable-ib: no active RDMA port: keep NCCL from probing verbs devices and use sockets
export NCCL_IB_DISABLE='1'
