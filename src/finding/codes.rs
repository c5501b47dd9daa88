//! The registry of finding codes: one enum per area (in the manner of cargo-deny's `Code`
//! enums), each variant with its stable string, the area it belongs to and one line on what it
//! means. A code that is not declared here cannot be emitted, `docs/codes.md` is generated from
//! this table (a test fails when the file is stale), and a test checks the strings are unique.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! registry {
    ($(
        $(#[$area_doc:meta])*
        $variant:ident($enum:ident) = $area:literal, $title:literal {
            $( $code:ident = $text:literal => $meaning:literal, )*
        }
    )*) => {
        $(
            $(#[$area_doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
            pub enum $enum { $( $code, )* }

            impl $enum {
                pub const ALL: &'static [$enum] = &[ $( $enum::$code, )* ];
                pub fn as_str(self) -> &'static str {
                    match self { $( $enum::$code => $text, )* }
                }
                pub fn meaning(self) -> &'static str {
                    match self { $( $enum::$code => $meaning, )* }
                }
            }

            impl From<$enum> for Code {
                fn from(c: $enum) -> Code { Code::$variant(c) }
            }

            impl PartialEq<&str> for $enum {
                fn eq(&self, other: &&str) -> bool { self.as_str() == *other }
            }

            impl std::fmt::Display for $enum {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
            }

            impl PartialEq<$enum> for Code {
                fn eq(&self, other: &$enum) -> bool { *self == Code::$variant(*other) }
            }
        )*

        /// Any registered code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant($enum), )* }

        /// The areas, in the order `docs/codes.md` lists them: (name, title).
        pub const AREAS: &[(&str, &str)] = &[ $( ($area, $title), )* ];

        impl Code {
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant(c) => c.as_str(), )* }
            }
            pub fn meaning(self) -> &'static str {
                match self { $( Code::$variant(c) => c.meaning(), )* }
            }
            /// The area (`node`, `gpu`, `lint`, ...): the group a finding is counted under.
            pub fn area(self) -> &'static str {
                match self { $( Code::$variant(_) => $area, )* }
            }
            /// Every registered code, area by area.
            pub fn all() -> Vec<Code> {
                let mut v = Vec::new();
                $( v.extend($enum::ALL.iter().map(|c| Code::$variant(*c))); )*
                v
            }
        }
    };
}

registry! {
    /// What the probes could and could not see (every node-reading command).
    Node(NodeCode) = "node", "Node evidence (detect, verify, configure, lint)" {
        Probes = "node.probes" => "a probe that did not answer cleanly: not installed, hung, exited non-zero part-way, output cut at the size cap, output not understood, or absent from a replayed capture; the subject names the probe",
        TopoNicsTruncated = "node.topo-nics-truncated" => "`nvidia-smi topo -m` shows fewer NICs than it found: GPU-NIC affinity covers the shown ones",
        Evidence = "node.evidence" => "a check group that is required (`--require`, `[require]`, `--expect-gpus`) saw nothing, or a summary of the groups that could not see",
        Identity = "node.identity" => "the node's identity (host name, machine id, DMI serial/UUID, boot id) could not be read in full",
    }
    /// GPUs and NVLink.
    Gpu(GpuCode) = "gpu", "GPUs and NVLink" {
        Count = "gpu.count" => "the number of GPUs the driver lists, against `--expect-gpus` or the expectations file",
        NvlinkLinks = "gpu.nvlink-links" => "NVLinks per GPU: inactive links, or fewer than expected",
        NvlinkSpeed = "gpu.nvlink-speed" => "NVLink per-link speed: mixed speeds, or below the expected speed",
        Fabric = "gpu.fabric" => "NVSwitch systems: every GPU registered with the NVLink fabric (Fabric Manager)",
        Nvls = "gpu.nvls" => "prerequisites of NVLink SHARP (NVLS): Hopper or newer on an NVSwitch fabric",
        Mig = "gpu.mig" => "GPUs in MIG mode: MIG devices are not NVLink peers, NCCL between them goes through host memory",
        NvlinkDomain = "gpu.nvlink-domain" => "multi-node NVLink (NVL72 trays): every GPU of the node registered in the same NVLink domain (cluster UUID and clique id)",
    }
    /// RDMA ports.
    Rdma(RdmaCode) = "rdma", "RDMA ports (InfiniBand and RoCE)" {
        PortState = "rdma.port-state" => "an RDMA port that is not `Active` (`Initializing` means no subnet manager)",
        PortRate = "rdma.port-rate" => "an RDMA port below the expected rate or slower than its peers",
        LinkLayer = "rdma.link-layer" => "an RDMA port whose link layer (InfiniBand or Ethernet/RoCE) differs from the expected one",
        IbstatWarning = "rdma.ibstat-warning" => "an `ibwarn:` line printed by ibstat",
        Lossless = "rdma.lossless" => "a RoCE rail port with no priority carrying both PFC and ECN (lossless RoCE with DCQCN), or that cannot be seen",
    }
    /// GPUDirect RDMA.
    Gpudirect(GpudirectCode) = "gpudirect", "GPUDirect RDMA" {
        Path = "gpudirect.path" => "the GPUDirect RDMA path NCCL can use (peer-memory client or DMA-BUF), or that neither is available",
    }
    /// PCIe topology between GPUs and NICs.
    Pcie(PcieCode) = "pcie", "PCIe" {
        GpuNicDistance = "pcie.gpu-nic-distance" => "each GPU's nearest RDMA NIC, against NCCL's GPUDirect distance limit (`NCCL_NET_GDR_LEVEL`)",
        Acs = "pcie.acs" => "PCIe ACS redirection on the switch ports between GPUs and NICs",
        Iommu = "pcie.iommu" => "IOMMU mode on the kernel command line",
    }
    /// Versions of the software stack.
    Software(SoftwareCode) = "software", "Software versions and NCCL environment" {
        Driver = "software.driver" => "the NVIDIA driver version, against the expectations",
        Ofed = "software.ofed" => "the MLNX_OFED / DOCA-OFED version, against the expectations",
        Nccl = "software.nccl" => "the NCCL library version, against the expectations",
        NcclEnv = "software.nccl-env" => "the `lint` findings for the live NCCL environment and config files",
    }
    /// Evidence from an NCCL run's `NCCL_DEBUG=INFO` log.
    NcclRun(NcclRunCode) = "nccl", "NCCL run log (verify --nccl-log)" {
        Log = "nccl.log" => "the NCCL log given to verify holds no NCCL lines",
        Version = "nccl.version" => "the NCCL version the run loaded",
        Transports = "nccl.transports" => "the transports NCCL chose per channel",
        NetSocket = "nccl.net-socket" => "NCCL fell back to the socket transport where RDMA was expected",
        Gdr = "nccl.gdr" => "whether NCCL used GPUDirect RDMA (`/GDRDMA`) on every NIC",
        GdrHca = "nccl.gdr-hca" => "a NIC on which NCCL did not use GPUDirect RDMA",
        Nics = "nccl.nics" => "the NICs NCCL used against the node's rail ports",
        Nvls = "nccl.nvls" => "whether NCCL used NVLS",
        IbCompletion = "nccl.ib-completion" => "InfiniBand completion errors in the log",
        Warnings = "nccl.warnings" => "`NCCL WARN` lines in the log",
        Failures = "nccl.failures" => "NCCL failures (`NCCL failure`, `unhandled system error`, aborts) in the log",
        Env = "nccl.env" => "NCCL variables the log says were set by the environment",
        Conf = "nccl.conf" => "NCCL variables the log says were read from a config file",
    }
    /// NCCL settings as NCCL reads them.
    Lint(LintCode) = "lint", "lint (and configure's refusals)" {
        UnknownVariable = "unknown-variable" => "not a variable NCCL (2.30.7) reads: silently ignored; a did-you-mean is given",
        RemovedVariable = "removed-variable" => "removed in an NCCL version; silently ignored",
        DeprecatedVariable = "deprecated-variable" => "deprecated in favour of another variable",
        NotInVersion = "not-in-version" => "the variable or syntax needs a newer NCCL than the one given",
        AutoValue = "auto-value" => "`auto` is not an NCCL value (`NCCL_ALGO=auto` fails init since 2.24; numbers read as 0)",
        MisreadValue = "misread-value" => "`strtoll` stops early: `4MB` is read as 4",
        OctalValue = "octal-value" => "a leading 0 makes a number octal: `010` is 8",
        WhitespaceValue = "whitespace-value" => "NCCL does not trim values",
        BadValue = "bad-value" => "not one of the accepted values",
        OutOfRange = "out-of-range" => "outside the documented range",
        LevelCase = "level-case" => "level names are case-sensitive: `sys` is ignored",
        LegacyIntLevel = "legacy-int-level" => "a bare number for a level (`5` means SYS)",
        UnknownToken = "unknown-token" => "an unknown `NCCL_ALGO`/`NCCL_PROTO` token",
        DebugVariable = "debug-variable" => "in NCCL's Debugging group: not for production",
        ForcedAlgorithm = "forced-algorithm" => "`NCCL_ALGO` set: NCCL's tuning is overridden for every size",
        ForcedProtocol = "forced-protocol" => "`NCCL_PROTO` set: NCCL's tuning is overridden for every size",
        NthreadsNotSms = "nthreads-not-sms" => "`NCCL_NTHREADS` does not free SMs",
        CrossNic1 = "cross-nic-1" => "`NCCL_CROSS_NIC=1` on rail-optimised fabrics",
        NvlsEnable1 = "nvls-enable-1" => "`NCCL_NVLS_ENABLE=1` instead of the default 2",
        GidIndexOnIb = "gid-index-on-ib" => "`NCCL_IB_GID_INDEX` on InfiniBand, where NCCL ignores it",
        GidIndex221 = "gid-index-2.21" => "`NCCL_IB_GID_INDEX` with NCCL 2.21+, which picks the RoCE v2 GID itself",
        GidIndexSet = "gid-index-set" => "`NCCL_IB_GID_INDEX` set by hand",
        HcaPrefix = "hca-prefix" => "`NCCL_IB_HCA` without `=` matches devices by prefix",
        HcaNoMatch = "hca-no-match" => "with node facts: an `NCCL_IB_HCA` entry that matches no active port",
        HcaDownPort = "hca-down-port" => "with node facts: an `NCCL_IB_HCA` entry that includes a port that is not up",
        RedundantDefault = "redundant-default" => "restates NCCL's default",
        MinAboveMax = "min-above-max" => "MIN above MAX for CTAs or channels",
        AlgoWithTuner = "algo-with-tuner" => "`NCCL_ALGO`/`NCCL_PROTO` set while a tuner plugin is configured",
        DuplicateVariable = "duplicate-variable" => "set twice with different values (shell: the last wins; nccl.conf: the first wins)",
        Shadowed = "shadowed" => "a value that another source overrides (environment > user conf > /etc/nccl.conf)",
        ConfQuoted = "conf-quoted" => "nccl.conf has no quoting: the quotes become part of the value",
        ConfWhitespace = "conf-whitespace" => "nccl.conf does not trim: the spaces become part of the value",
        ConfCommentRead = "conf-comment-read" => "a `#` line with `=` in nccl.conf: NCCL before 2.26 reads it as a variable",
        EmptyValue = "empty-value" => "set but empty: NCCL keeps its default",
        PluginVariable = "plugin-variable" => "read by a net/tuner plugin or PyTorch, not by NCCL (with the new name for PyTorch's old `NCCL_*` aliases)",
        DisablesTransport = "disables-transport" => "turns a transport or data path off (`NCCL_P2P_DISABLE=1`, `NCCL_SHM_DISABLE=1`, `NCCL_NET_GDR_LEVEL=LOC`, `NCCL_NVLS_ENABLE=0`, ...)",
        NotExported = "not-exported" => "set without `export` in a script that launches tasks: they never see it",
        AssumedDefault = "assumed-default" => "`${X:-default}`: lint read the default, assuming X unset where the job runs",
        IbSettingsDead = "ib-settings-dead" => "`NCCL_IB_*` settings beside `NCCL_IB_DISABLE=1`, which turns the IB transport off",
        IbDisabledWithRails = "ib-disabled-with-rails" => "with node facts: `NCCL_IB_DISABLE=1` on a node with Active RDMA ports",
        IfaceWildcard = "iface-wildcard" => "`*`, `?` or `[` in an interface list: NCCL has prefix matching, no wildcards",
        IfaceMissing = "iface-missing" => "with node facts: an interface entry that matches no interface of the node",
        TooManySockets = "too-many-sockets" => "`NCCL_SOCKET_NTHREADS` x `NCCL_NSOCKS_PERTHREAD` above 64: NCCL lowers the sockets per thread",
        HcaDuplicate = "hca-duplicate" => "an `NCCL_IB_HCA` entry already covered by an earlier one",
        UnreadableConfig = "unreadable-config" => "a config file NCCL would read is a directory, FIFO (init hangs), symlink loop or unreadable",
        GdrBelowC2c = "gdr-level-c2c" => "with node facts: `NCCL_NET_GDR_LEVEL` below P2C (or `NCCL_NET_GDR_C2C=0`) on a Grace (C2C) node, which turns GPUDirect RDMA off for the NICs on the GPU's CPU",
        TcNotLossless = "tc-not-lossless" => "with node facts: an `NCCL_IB_TC`/`NCCL_IB_SL` whose priority no lossless (PFC) priority of the RoCE rails carries",
        QosUnseen = "qos-unseen" => "with node facts: a traffic class or service level the host cannot judge (InfiniBand: the subnet manager's SL-to-VL mapping; RoCE: PFC not seen, PCP trust)",
        PluginTransport = "plugin-transport" => "with node facts: an `NCCL_IB_*` setting on a platform whose net plugin (aws-ofi-nccl over EFA, GPUDirect-TCPX/TCPXO) carries the traffic instead",
    }
    /// What `configure` could not decide from the node.
    Configure(ConfigureCode) = "configure", "configure" {
        VersionUnknown = "configure.nccl-version-unknown" => "the NCCL version is unknown: version-dependent rules were skipped",
        PortsUnknown = "configure.ports-unknown" => "the RDMA ports are unknown: network rules were skipped",
        NothingToSet = "configure.nothing-to-set" => "NCCL's defaults fit this node for this mode",
        RuleSkipped = "configure.rule-skipped" => "a rule whose value could not be filled in or validated was skipped",
        TrafficClass = "configure.traffic-class" => "RoCE rails whose lossless traffic class could not be told from the node: NCCL_IB_TC was not set",
        Platform = "configure.platform" => "the cloud platform or NCCL plugin detected, what its provider's documentation says, and what configure did or did not write for it",
        NcclVersions = "configure.nccl-versions" => "several NCCL versions on the node, loaded by different kinds of process: which one the version-dependent rules used",
    }
    /// Judging nccl-tests results.
    Bench(BenchCode) = "bench", "bench" {
        RunFailed = "run-failed" => "a `Test NCCL/CUDA failure` or timeout line",
        RunTruncated = "run-truncated" => "the run ended before its footer",
        WrongData = "wrong-data" => "`#wrong` > 0, out-of-bounds values, or an old-format deviation beyond the type's tolerance",
        Regression = "regression" => "a size regressed beyond `--tolerance` against `--compare`",
        TwoNodeTree = "two-node-tree" => "2-node all_reduce: default Tree/NVLSTree busbw is not wire bandwidth",
        InSwitchReduction = "in-switch-reduction" => "NVLS/SHARP busbw is not wire bandwidth",
        NoTarget = "no-target" => "no target for this collective",
        TargetsMismatch = "targets-mismatch" => "the `--profile`/`--targets`/`--from-node` targets do not fit the run (GPU model, node count, GPUs per node)",
        NoFigure = "no-figure" => "no figure applies (multi-node without known NICs, PCIe GPUs): the measured peak beside the usual figure, and the flag that gives a verdict",
        MinBwFailed = "min-bw-failed" => "nccl-tests' own `NCCL_TESTS_MIN_BW` check (0.9 x the value against the average over all sizes) failed",
        InputError = "input-error" => "an input file could not be read (empty, cut off, not nccl-tests output); the other files are still judged",
        RunInterrupted = "run-interrupted" => "`bench run`: nccltune got SIGINT/SIGTERM/SIGHUP and stopped the benchmark; the sizes so far are judged",
        RunTimeout = "run-timeout" => "`bench run`: `--timeout` passed and the benchmark was stopped",
        LogWriteFailed = "log-write-failed" => "`bench run`: the raw log could not be written (a full disk); the benchmark was stopped",
    }
    /// Placement.
    Place(PlaceCode) = "place", "place" {
        TpGroupSpansNodes = "tp-group-spans-nodes" => "a tensor-parallel group had to span nodes",
        TpExceedsNode = "tp-exceeds-node" => "the tensor-parallel size exceeds the GPUs of one node",
        PipelineCrossesRacks = "pipeline-crosses-racks" => "a pipeline had to cross racks",
        PipelineCrossesPods = "pipeline-crosses-pods" => "a pipeline had to cross pods",
        NoNic = "no-nic" => "a tensor-parallel group spans a node whose cluster entry has no NIC: it cannot communicate across nodes",
        TpGroupInNvlinkDomain = "tp-group-in-nvlink-domain" => "tensor-parallel groups span trays inside one NVLink domain (NVL72): their cost is NVLink, not the network",
        CrossRackLatencyAssumed = "cross-rack-latency-assumed" => "the cross-rack hop latency is an assumption, not a measurement",
    }
    /// `fleet merge`: why a node is not `ok` when the reason is not one of its own checks.
    Fleet(FleetCode) = "fleet", "Fleet (fleet merge reasons)" {
        NoResult = "fleet.no-result" => "an expected node reported nothing (no `.rc`, or its pod never printed its result): `missing`, never healthy",
        NotTested = "fleet.not-tested" => "a node in no multi-node test yet (run `fleet next`)",
        Timeout = "fleet.timeout" => "a node's verify did not finish within `--timeout` (exit 124, or 137 after the kill)",
        Unreadable = "fleet.unreadable" => "a node's verify report is truncated, junk, of a newer schema or without its `.rc`: the node could not be judged (`error`)",
        ExitStatus = "fleet.exit-status" => "verify exited with a status other than 0 or 1 although its report says ok",
        VerifyFailed = "fleet.verify-failed" => "the verify report says not ok without a failed check to name",
        Confirmed = "fleet.confirmed" => "failed `--confirm` confirmation tests with distinct known-good partners and passed none: `bad`",
        ScreenFailed = "fleet.screen-failed" => "one failed screening test (pair or group); the subject names its partners",
        BisectFailed = "fleet.bisect-failed" => "one failed bisection test (half of a failed group); the subject names its partners",
        ConfirmFailed = "fleet.confirm-failed" => "one failed confirmation test with a known-good partner; the subject names the partner",
        RetestFailed = "fleet.retest-failed" => "a node set whose members all passed elsewhere failed again (a link or fabric fault, or transient)",
        Drift = "fleet.drift" => "`--consensus`: a check's typed value differs from the fleet's majority",
        Identity = "fleet.identity" => "two node names report one machine (machine-id, DMI serial or UUID): a reused host name or a misfiled result",
        ExpectUnseen = "fleet.expect-unseen" => "`--expect`: a value the expectations name is missing from the node's report (not a pass)",
        Rail = "fleet.rail" => "`--check rails`: one rail (HCA) of the node failed `--confirm` confirmation tests on that rail with partners good on it",
        ProbeFailed = "fleet.probe-failed" => "a cross-boundary probe failed: a pair of good nodes, one from each half of a failed group whose halves both passed (the path between the halves, not a node)",
    }
}

impl Code {
    /// Looks a code up by its string.
    pub fn parse(s: &str) -> Option<Code> {
        Code::all().into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Code, D::Error> {
        let s = String::deserialize(d)?;
        Code::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown finding code `{s}`")))
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// `docs/codes.md`, generated from the registry.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Finding codes\n\n\
         <!-- Generated from src/finding/codes.rs by `cargo test` (codes_md_is_current); do not edit. -->\n\n\
         Every problem nccltune reports, in every command, is a finding with one of these codes, a\n\
         level (`pass`, `skip`, `info`, `warn`, `fail`), a subject, the observed and expected values\n\
         where they exist, the evidence and a fix. Scripts may match on codes; messages may change.\n\
         The same fault has the same code in every command: `detect` reports a down port as\n\
         `rdma.port-state` at `warn`, `verify` fails the same code.\n",
    );
    for (area, title) in AREAS {
        s.push_str(&format!("\n## {title}\n\n| code | meaning |\n| --- | --- |\n"));
        for c in Code::all().into_iter().filter(|c| c.area() == *area) {
            s.push_str(&format!("| `{}` | {} |\n", c.as_str(), c.meaning()));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let all = Code::all();
        let mut strings: Vec<&str> = all.iter().map(|c| c.as_str()).collect();
        strings.sort_unstable();
        let n = strings.len();
        strings.dedup();
        assert_eq!(strings.len(), n, "duplicate code strings");
        for c in all {
            assert_eq!(Code::parse(c.as_str()), Some(c));
            assert!(!c.meaning().is_empty());
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "-.".contains(ch)),
                "{c}"
            );
        }
    }

    #[test]
    fn codes_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/codes.md");
        let want = markdown();
        let have = std::fs::read_to_string(path).unwrap_or_default();
        if have != want {
            if std::env::var_os("NCCLTUNE_BLESS").is_some() {
                std::fs::write(path, &want).expect("write docs/codes.md");
            } else {
                panic!("docs/codes.md is stale: run `NCCLTUNE_BLESS=1 cargo test codes_md_is_current`");
            }
        }
    }
}
