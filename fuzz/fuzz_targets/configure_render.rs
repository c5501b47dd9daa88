#![no_main]
//! Fuzz target: any configure report value (host name, NCCL version, setting names, values,
//! rule ids, whys) through every configure format, then read back with the consumer's
//! grammar. Each format either refuses the report or writes a file that reads back as exactly
//! the settings, with no extra line, command or key. Input: fields separated by 0x1E
//! (host, version, then name, value, rule, why per setting).
use libfuzzer_sys::fuzz_target;
use nccltune::configure::{ConfigureReport, Setting};
use nccltune::render::{self, configure as cf};

#[path = "common/reread.rs"]
mod reread;

fn report(data: &[u8]) -> ConfigureReport {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\u{1e}');
    let hostname = f.next().map(str::to_string);
    let nccl_version = f.next().map(str::to_string);
    let mut settings = Vec::new();
    // A few settings are enough to mix values; thousands would only make tables slow.
    while settings.len() < 16 {
        let (Some(name), Some(value)) = (f.next(), f.next()) else { break };
        settings.push(Setting {
            name: name.to_string(),
            value: value.to_string(),
            rule: f.next().unwrap_or("r").to_string(),
            why: f.next().unwrap_or("w").to_string(),
            source: "fuzz".into(),
        });
    }
    ConfigureReport {
        schema: 1,
        hostname,
        source: "fuzz".into(),
        mode: "training".into(),
        nodes: Some(2),
        nccl_version,
        settings,
        rules: vec![],
        notes: vec![],
        facts: Default::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let r = report(data);
    let want: Vec<(String, String)> = r.settings.iter().map(|s| (s.name.clone(), s.value.clone())).collect();
    let names_ok = r.settings.iter().all(|s| reread::is_name(&s.name));
    let no_nul = r.settings.iter().all(|s| !s.value.contains('\0'));

    match cf::shell(&r) {
        Ok(t) => assert_eq!(reread::shell_file(&t).as_ref(), Some(&want), "shell:\n{t}"),
        Err(_) => assert!(!names_ok || !no_nul, "shell refused a writable report"),
    }
    match cf::mpirun(&r) {
        Ok(t) => assert_eq!(reread::mpirun_args(&t).as_ref(), Some(&want), "mpirun:\n{t}"),
        Err(_) => assert!(!names_ok || !no_nul, "mpirun refused a writable report"),
    }
    match cf::conf(&r) {
        Ok(t) => assert_eq!(reread::nccl_conf(&t).as_ref(), Some(&want), "nccl-conf:\n{t}"),
        Err(_) => {
            let plain = r.settings.iter().all(|s| {
                let v = &s.value;
                !v.chars().any(render::text::is_unsafe) && !v.contains(['"', '\'']) && v == v.trim()
            });
            assert!(!names_ok || !plain, "nccl-conf refused a writable report");
        }
    }
    match cf::k8s(&r) {
        Ok(t) => {
            if want.is_empty() {
                assert_eq!(t, "env: []\n");
            } else {
                assert_eq!(reread::k8s_env(&t).as_ref(), Some(&want), "k8s:\n{t}");
            }
        }
        Err(_) => assert!(!names_ok || !no_nul, "k8s refused a writable report"),
    }
    let json = render::json(&r).expect("json");
    let back: serde_json::Value = serde_json::from_str(&json).expect("json reads back");
    for (i, (n, v)) in want.iter().enumerate() {
        assert_eq!(back["settings"][i]["name"].as_str(), Some(n.as_str()));
        assert_eq!(back["settings"][i]["value"].as_str(), Some(v.as_str()));
    }
    let explain = cf::explain(&r);
    assert!(
        !explain.chars().any(|c| render::text::is_unsafe(c) && c != '\n' && c != '\t'),
        "explain reaches the terminal with a control character: {explain:?}"
    );
});
