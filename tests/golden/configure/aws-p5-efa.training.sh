# nccltune configure --mode training for ip-10-1-38-217 (NCCL 2.23.4)
# nothing to set: NCCL's defaults fit this node
