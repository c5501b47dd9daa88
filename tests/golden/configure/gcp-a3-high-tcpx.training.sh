# nccltune configure --mode training for a3high-node-1 (NCCL 2.21.5)
# nothing to set: NCCL's defaults fit this node
