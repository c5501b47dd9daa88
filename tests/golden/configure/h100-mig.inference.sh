# nccltune configure --mode inference for gpu-h100-mig-03 (NCCL 2.19.3)
# no-rdma-disable-ib: no active RDMA port: keep NCCL from probing verbs devices and use sockets
export NCCL_IB_DISABLE='1'
# inference-max-ctas: inference shares the GPU with the model: cap NCCL at 16 CTAs (channels) so more SMs stay with compute; costs bandwidth on large ring/tree messages. NVLS uses 16 channels on sm90 (Hopper), so there the cap does not cut NVLS; NCCL_MAX_CTAS also caps NVLS channels, which are 24 (one node) or 32 (several) on sm100. Our choice, not an NVIDIA figure: measure with `nccltune bench`, override with --rules
export NCCL_MAX_CTAS='16'
