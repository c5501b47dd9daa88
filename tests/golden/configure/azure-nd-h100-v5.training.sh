# nccltune configure --mode training for ndv5-node-012 (NCCL 2.21.5)
# ib-hca-exact: exact list (=) of the active InfiniBand rail ports: no prefix matching (mlx5_1 would match mlx5_10..19) and no Ethernet front-end or storage ports
export NCCL_IB_HCA='=mlx5_ib0:1,mlx5_ib1:1,mlx5_ib2:1,mlx5_ib3:1,mlx5_ib4:1,mlx5_ib5:1,mlx5_ib6:1,mlx5_ib7:1'
# azure-ndv5-topology: Azure ND H100 v5: the VM does not show the PCIe switches that pair each GPU with its InfiniBand NIC, so NCCL is given Azure's topology file (Azure's HPC images install it as /opt/microsoft/ndv5/topo.xml, a link to /opt/microsoft/ndv5-topo.xml) and relaxed PCI ordering, as Azure's image writes them to /etc/nccl.conf
export NCCL_IB_PCI_RELAXED_ORDERING='1'
# azure-ndv5-topology: Azure ND H100 v5: the VM does not show the PCIe switches that pair each GPU with its InfiniBand NIC, so NCCL is given Azure's topology file (Azure's HPC images install it as /opt/microsoft/ndv5/topo.xml, a link to /opt/microsoft/ndv5-topo.xml) and relaxed PCI ordering, as Azure's image writes them to /etc/nccl.conf
export NCCL_TOPO_FILE='/opt/microsoft/ndv5/topo.xml'
