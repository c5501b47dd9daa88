//! The NCCL libraries found (`nccl-library`) and which one each kind of process would load,
//! by the dynamic loader's search order (`ld.so(8)`): a `DT_RPATH` of the loading object
//! (when it has no `DT_RUNPATH`), then `LD_LIBRARY_PATH`, then `DT_RUNPATH`, then the cache
//! (`/etc/ld.so.cache`, `ldconfig -p`), then the default folders. A process asks for the
//! soname, `libnccl.so.2`, never for `libnccl.so.2.X.Y`.

use super::Outputs;
use crate::node::{NcclLibrary, NcclLoad};
use crate::parse;
use crate::probe::names;

const SONAME: &str = "libnccl.so.2";

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The `site-packages` (or `dist-packages`) folder a path lies in, if any.
fn site_packages(path: &str) -> Option<&str> {
    ["/site-packages/", "/dist-packages/"]
        .iter()
        .find_map(|m| path.find(m).map(|i| &path[..i + m.len() - 1]))
}

pub(super) fn libraries(out: &Outputs) -> Vec<NcclLibrary> {
    let Some(text) = out.ok_text(names::NCCL_LIBRARY) else {
        return Vec::new();
    };
    let parsed = parse::nccl_library::parse_all(&text);
    let mut libs: Vec<NcclLibrary> = parsed
        .iter()
        .map(|l| NcclLibrary {
            path: l.path.clone(),
            version: l.version.clone(),
            how: l.how.clone(),
            origin: l.origin.clone().unwrap_or_else(|| {
                if site_packages(&l.path).is_some() {
                    "python".into()
                } else {
                    "unknown".into()
                }
            }),
        })
        .collect();
    // Older captures list `libnccl.so.2` without its link target: one versioned file beside it
    // is, on every package layout we know, that target.
    for i in 0..libs.len() {
        if libs[i].version.is_some() {
            continue;
        }
        let dir = folder(&libs[i].path).to_string();
        let mut beside: Vec<String> = libs
            .iter()
            .filter(|o| folder(&o.path) == dir && o.how == "file name")
            .filter_map(|o| o.version.clone())
            .collect();
        beside.dedup();
        if let [v] = beside.as_slice() {
            libs[i].version = Some(v.clone());
            libs[i].how = "same folder".into();
        }
    }
    libs
}

const PROGRAM: &str = "program";

/// Which library each kind of process loads: a program linked against `libnccl.so.2`
/// (nccl-tests, an MPI or C++ job), and PyTorch in each Python environment with NCCL.
pub(super) fn loads(libs: &[NcclLibrary], out: &Outputs) -> Vec<NcclLoad> {
    if libs.is_empty() {
        return Vec::new();
    }
    let cache = out
        .ok_text(names::LDCONFIG)
        .map(|t| parse::nccl_library::parse_ldconfig(&t, SONAME));
    let mut v = vec![program(libs, cache.as_deref())];
    v.extend(pytorch(libs, &v[0]));
    v
}

fn version_of(libs: &[NcclLibrary], path: &str) -> Option<String> {
    libs.iter()
        .find(|l| l.path == path)
        .and_then(|l| l.version.clone())
        .or_else(|| {
            // The cache names a file the library search did not list: a versioned file in its
            // folder tells.
            let mut beside: Vec<&String> = libs
                .iter()
                .filter(|l| folder(&l.path) == folder(path) && l.how == "file name")
                .filter_map(|l| l.version.as_ref())
                .collect();
            beside.dedup();
            (beside.len() == 1).then(|| beside[0].clone())
        })
}

fn program(libs: &[NcclLibrary], cache: Option<&[String]>) -> NcclLoad {
    const RPATH_NOTE: &str = "a program built with an RPATH or RUNPATH (`readelf -d PROGRAM | grep -E 'R(UN)?PATH'`) or run under LD_PRELOAD can load another";
    let load = |path: &str, rule: String| NcclLoad {
        process: PROGRAM.into(),
        path: Some(path.to_string()),
        version: version_of(libs, path),
        rule,
    };
    if let Some(l) = libs
        .iter()
        .find(|l| l.origin == "LD_LIBRARY_PATH" && file_name(&l.path) == SONAME)
    {
        return load(
            &l.path,
            format!(
                "ld.so(8) search order: LD_LIBRARY_PATH before the loader's cache and the default folders; its first folder with {SONAME} wins; {RPATH_NOTE}"
            ),
        );
    }
    let unknown_origin = libs.iter().any(|l| l.origin == "unknown");
    let ld_note = if unknown_origin {
        " (the capture predates the origin column, so folders from LD_LIBRARY_PATH are not told apart)"
    } else {
        ""
    };
    match cache {
        Some([first, ..]) => load(
            first,
            format!(
                "ld.so(8) search order: no {SONAME} in LD_LIBRARY_PATH{ld_note}, so the loader's cache (/etc/ld.so.cache, `ldconfig -p`) decides and maps {SONAME} to this file; {RPATH_NOTE}"
            ),
        ),
        Some([]) => {
            let default = libs.iter().find(|l| {
                file_name(&l.path) == SONAME
                    && ["/lib", "/usr/lib", "/lib64", "/usr/lib64"].contains(&folder(&l.path))
            });
            match default {
                Some(l) => load(
                    &l.path,
                    format!(
                        "ld.so(8) search order: no {SONAME} in LD_LIBRARY_PATH{ld_note} nor in the loader's cache (`ldconfig -p`), so the default folders (/lib, /usr/lib; /lib64, /usr/lib64 on 64-bit) decide; {RPATH_NOTE}"
                    ),
                ),
                None => NcclLoad {
                    process: PROGRAM.into(),
                    path: None,
                    version: None,
                    rule: format!(
                        "ld.so(8) search order: {SONAME} is in neither LD_LIBRARY_PATH{ld_note}, the loader's cache (`ldconfig -p`) nor the default folders: a program linked against it fails to start (`cannot open shared object file`) unless its RPATH or RUNPATH names a folder with it; run `ldconfig` after installing NCCL in a folder listed in /etc/ld.so.conf"
                    ),
                },
            }
        }
        None => {
            match libs
                .iter()
                .find(|l| l.origin != "python" && l.origin != "env" && file_name(&l.path) == SONAME)
            {
                Some(l) => load(
                    &l.path,
                    format!(
                        "assumed: the first folder outside Python environments with {SONAME}, in the probe's order{ld_note}; the loader's cache (`ldconfig -p`) that decides after LD_LIBRARY_PATH (ld.so(8)) was not captured: `ldconfig -p | grep libnccl` shows it"
                    ),
                ),
                None => NcclLoad {
                    process: PROGRAM.into(),
                    path: None,
                    version: None,
                    rule: format!(
                        "no {SONAME} found outside Python environments and the loader's cache (`ldconfig -p`) was not captured: unknown; `ldconfig -p | grep libnccl` shows what a program would load"
                    ),
                },
            }
        }
    }
}

/// PyTorch in each environment with NCCL: PyPI's CUDA wheels link `libnccl.so.2` through a
/// `DT_RPATH` of `$ORIGIN/../../nvidia/nccl/lib` ahead of `$ORIGIN` (pytorch/builder pull
/// requests 1150 "Uses RPATH instead of RUNPATH so that user strictly uses pypi libs" and
/// 1196, NCCL from PyPI), and `ld.so(8)` searches `DT_RPATH` before `LD_LIBRARY_PATH`.
fn pytorch(libs: &[NcclLibrary], program: &NcclLoad) -> Vec<NcclLoad> {
    let mut sites: Vec<&str> = Vec::new();
    for l in libs {
        if let Some(s) = site_packages(&l.path)
            && !sites.contains(&s)
        {
            sites.push(s);
        }
    }
    let mut v = Vec::new();
    for site in sites {
        let wheel = format!("{site}/nvidia/nccl/lib/{SONAME}");
        let torch = format!("{site}/torch/lib/{SONAME}");
        let other = match (&program.path, &program.version) {
            (Some(p), v) => format!(
                "; a program outside PyTorch loads {p}{} instead",
                v.as_deref().map(|v| format!(" ({v})")).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let (path, rule) = if libs.iter().any(|l| l.path == wheel) {
            (
                wheel,
                format!(
                    "DT_RPATH: PyTorch's PyPI CUDA wheels link {SONAME} through the RPATH $ORIGIN/../../nvidia/nccl/lib (pytorch/builder pull requests 1150 and 1196), which ld.so(8) searches before LD_LIBRARY_PATH, so LD_LIBRARY_PATH does not change it (LD_PRELOAD does); assumed: the torch in this environment is such a wheel (`readelf -d {site}/torch/lib/libtorch_cuda.so | grep RPATH`){other}"
                ),
            )
        } else if libs.iter().any(|l| l.path == torch) {
            (
                torch,
                format!(
                    "DT_RPATH: PyTorch's libraries carry $ORIGIN (torch/lib) in their RPATH, searched before LD_LIBRARY_PATH (ld.so(8)); assumed, since builds that link NCCL statically or from their environment exist (`readelf -d {site}/torch/lib/libtorch_cuda.so`){other}"
                ),
            )
        } else {
            continue;
        };
        v.push(NcclLoad {
            process: format!("pytorch {site}"),
            version: version_of(libs, &path),
            path: Some(path),
            rule,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{ProbeOutput, ProbeStatus};

    fn outputs(lib: &str, ldconfig: Option<&str>) -> Vec<ProbeOutput> {
        let mk = |name: &str, text: &str| ProbeOutput {
            name: name.into(),
            command: String::new(),
            status: ProbeStatus::Ok,
            stdout: text.as_bytes().to_vec(),
            stderr: Vec::new(),
            duration: std::time::Duration::ZERO,
            truncated: false,
        };
        let mut v = vec![mk(names::NCCL_LIBRARY, lib)];
        if let Some(c) = ldconfig {
            v.push(mk(names::LDCONFIG, c));
        }
        v
    }

    const TWO: &str = "/opt/nccl-2.27/lib/libnccl.so.2\t2.27.3\tlink target\tLD_LIBRARY_PATH\n\
/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2\t2.21.5\twheel metadata\tpython\n\
/usr/lib/x86_64-linux-gnu/libnccl.so.2\t2.19.3\tlink target\tsystem\n\
/usr/lib/x86_64-linux-gnu/libnccl.so.2.19.3\t\t\tsystem\n";

    #[test]
    fn ld_library_path_wins_for_programs_and_the_rpath_for_pytorch() {
        let o = outputs(TWO, None);
        let out = Outputs { all: &o };
        let libs = libraries(&out);
        assert_eq!(libs.len(), 4);
        let l = loads(&libs, &out);
        assert_eq!(l[0].process, "program");
        assert_eq!(l[0].path.as_deref(), Some("/opt/nccl-2.27/lib/libnccl.so.2"));
        assert_eq!(l[0].version.as_deref(), Some("2.27.3"));
        assert!(l[0].rule.contains("LD_LIBRARY_PATH before"), "{}", l[0].rule);
        assert_eq!(l[1].process, "pytorch /venv/lib/python3.11/site-packages");
        assert_eq!(l[1].version.as_deref(), Some("2.21.5"));
        assert!(l[1].rule.contains("before LD_LIBRARY_PATH"), "{}", l[1].rule);
        assert!(
            l[1].rule
                .contains("/opt/nccl-2.27/lib/libnccl.so.2 (2.27.3) instead")
        );
    }

    #[test]
    fn without_ld_library_path_the_cache_decides() {
        let lib = TWO.replacen("LD_LIBRARY_PATH", "env", 1);
        let cache = "\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n";
        let o = outputs(&lib, Some(cache));
        let out = Outputs { all: &o };
        let libs = libraries(&out);
        let l = loads(&libs, &out);
        assert_eq!(
            l[0].path.as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libnccl.so.2")
        );
        assert_eq!(l[0].version.as_deref(), Some("2.19.3"));
        assert!(l[0].rule.contains("ld.so.cache"));
        // An environment's lib folder is not searched by a program; an empty cache and no
        // default folder means it would not start.
        let o = outputs("/venv/lib/libnccl.so.2\t2.21.5\tlink target\tenv\n", Some(""));
        let out = Outputs { all: &o };
        let l = loads(&libraries(&out), &out);
        assert_eq!(l[0].path, None);
        assert!(l[0].rule.contains("fails to start"));
    }

    #[test]
    fn old_captures_get_the_version_from_the_same_folder_and_say_what_was_assumed() {
        let o = outputs(
            "/usr/lib/x86_64-linux-gnu/libnccl.so\n/usr/lib/x86_64-linux-gnu/libnccl.so.2\n/usr/lib/x86_64-linux-gnu/libnccl.so.2.21.5\n",
            None,
        );
        let out = Outputs { all: &o };
        let libs = libraries(&out);
        assert_eq!(libs[1].version.as_deref(), Some("2.21.5"));
        assert_eq!(libs[1].how, "same folder");
        assert_eq!(libs[1].origin, "unknown");
        let l = loads(&libs, &out);
        assert_eq!(l.len(), 1);
        assert_eq!(
            l[0].path.as_deref(),
            Some("/usr/lib/x86_64-linux-gnu/libnccl.so.2")
        );
        assert!(l[0].rule.starts_with("assumed"));
        assert!(l[0].rule.contains("predates the origin column"));
    }
}
