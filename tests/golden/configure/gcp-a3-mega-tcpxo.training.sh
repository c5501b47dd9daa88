# nccltune configure --mode training for a3mega-a3meganodeset-3 (NCCL 2.21.5)
# gcp-a3-mega-tcpxo: Google Cloud A3 Mega with the GPUDirect-TCPXO plugin: the plugin's control NIC and GPU NICs (the gVNIC interfaces; the first in name order is taken as the primary, control NIC), NCCL's own sockets on the control NIC, and the LLCM device folder, which Google's scripts set after sourcing the plugin's nccl-env-profile.sh (that profile sets the rest)
export NCCL_FASTRAK_CTRL_DEV='enp0s12'
# gcp-a3-mega-tcpxo: Google Cloud A3 Mega with the GPUDirect-TCPXO plugin: the plugin's control NIC and GPU NICs (the gVNIC interfaces; the first in name order is taken as the primary, control NIC), NCCL's own sockets on the control NIC, and the LLCM device folder, which Google's scripts set after sourcing the plugin's nccl-env-profile.sh (that profile sets the rest)
export NCCL_FASTRAK_IFNAME='enp6s0,enp7s0,enp13s0,enp14s0,enp134s0,enp135s0,enp141s0,enp142s0'
# gcp-a3-mega-tcpxo: Google Cloud A3 Mega with the GPUDirect-TCPXO plugin: the plugin's control NIC and GPU NICs (the gVNIC interfaces; the first in name order is taken as the primary, control NIC), NCCL's own sockets on the control NIC, and the LLCM device folder, which Google's scripts set after sourcing the plugin's nccl-env-profile.sh (that profile sets the rest)
export NCCL_FASTRAK_LLCM_DEVICE_DIRECTORY='/dev/aperture_devices'
# gcp-a3-mega-tcpxo: Google Cloud A3 Mega with the GPUDirect-TCPXO plugin: the plugin's control NIC and GPU NICs (the gVNIC interfaces; the first in name order is taken as the primary, control NIC), NCCL's own sockets on the control NIC, and the LLCM device folder, which Google's scripts set after sourcing the plugin's nccl-env-profile.sh (that profile sets the rest)
export NCCL_SOCKET_IFNAME='=enp0s12'
