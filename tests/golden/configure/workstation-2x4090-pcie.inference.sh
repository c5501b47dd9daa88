# nccltune configure --mode inference for ws-ml-02 (NCCL version unknown)
# no-rdma-disable-ib: no active RDMA port: keep NCCL from probing verbs devices and use sockets
export NCCL_IB_DISABLE='1'
# no-rdma-socket-ifname: no active RDMA port: carry sockets on the fastest physical interface that is up (exact name, no prefix match)
export NCCL_SOCKET_IFNAME='=enp6s0'
