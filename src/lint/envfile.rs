//! Reading NCCL settings out of the files people keep them in, with the line of each setting:
//! shell env files and job scripts (`export A=1 B=2`, `;` command lists, `if`/`fi` and `case`
//! branches, continuation lines, `${X:-default}`, `mpirun -x`/`-genv`, `srun --export=`,
//! `#SBATCH --export=`, `docker run -e`), dotenv files, Dockerfile `ENV`, Kubernetes YAML `env:`
//! lists (see `yaml`), and NCCL's own config files (`/etc/nccl.conf`, `~/.nccl.conf`), which NCCL
//! reads verbatim: split at the first `=`, no trimming, no quoting (NCCL 2.30.7
//! src/misc/param.cc:27-50). Every reader is one pass over the text, so lint stays linear in
//! its input, and every input is bounded (`MAX_FILE_BYTES`, `MAX_LINE_BYTES`).

use anyhow::{Result, bail};
use serde::Serialize;
use std::collections::HashSet;

/// Largest input read: a bigger file is refused with a clear error instead of filling memory.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Longest line accepted (NCCL itself reads config lines of at most 4095 bytes).
pub const MAX_LINE_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Syntax {
    /// Shell env files and job scripts: quotes removed and commands read as a shell would.
    Shell,
    /// `NAME=value` lines (optionally `export NAME=value`), quotes removed, no commands.
    Dotenv,
    /// NCCL config file: the value is everything after the first `=`.
    NcclConf,
    /// Kubernetes manifests: `env:` lists of `name`/`value` maps.
    Yaml,
    /// Dockerfile / Containerfile `ENV` instructions.
    Dockerfile,
    /// The process environment.
    Environment,
}

impl Syntax {
    pub fn label(self) -> &'static str {
        match self {
            Syntax::Shell => "shell",
            Syntax::Dotenv => "dotenv",
            Syntax::NcclConf => "nccl.conf",
            Syntax::Yaml => "Kubernetes YAML",
            Syntax::Dockerfile => "Dockerfile",
            Syntax::Environment => "environment",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub name: String,
    /// `None` for `mpirun -x NAME` (the value comes from the launching environment).
    pub value: Option<String>,
    /// File name, or `environment`.
    pub source: String,
    /// 1-based line; 0 for the environment.
    pub line: usize,
    pub syntax: Syntax,
    /// Whether the processes launched from this file see it. False only for a plain shell
    /// assignment that nothing exports.
    pub exported: bool,
    /// The value is computed when the script runs (`$(...)`, `$OTHER`): lint cannot check it.
    pub dynamic: bool,
    /// How lint read the value, where that is an assumption (`${X:-default}`).
    pub note: Option<String>,
    /// The `if`/`case` arms this assignment sits in: `(statement, arm)` pairs, outermost first.
    /// Two assignments in different arms of one statement never both happen.
    pub branch: Vec<(u32, u32)>,
}

impl Assignment {
    pub fn new(name: &str, value: Option<&str>, source: &str, line: usize, syntax: Syntax) -> Self {
        Assignment {
            name: name.to_string(),
            value: value.map(str::to_string),
            source: source.to_string(),
            line,
            syntax,
            exported: true,
            dynamic: false,
            note: None,
            branch: Vec::new(),
        }
    }

    pub fn location(&self) -> String {
        if self.line == 0 {
            self.source.clone()
        } else {
            format!("{}:{}", self.source, self.line)
        }
    }

    /// Whether both can be in effect in one run of the script.
    pub fn can_coexist(&self, other: &Assignment) -> bool {
        self.branch
            .iter()
            .all(|(s, arm)| other.branch.iter().all(|(s2, arm2)| s2 != s || arm2 == arm))
    }
}

/// The syntax a file is read with when its content does not say: from its name.
pub fn syntax_for(path: &str) -> Syntax {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    if lower.ends_with("nccl.conf") {
        Syntax::NcclConf
    } else if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        Syntax::Yaml
    } else if lower == "dockerfile" || lower == "containerfile" || lower.ends_with(".dockerfile") {
        Syntax::Dockerfile
    } else if lower == ".env" || lower.ends_with(".env") {
        Syntax::Dotenv
    } else {
        Syntax::Shell
    }
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A plain `NAME=value` line, as both dotenv files and NCCL config files have them.
fn plain_assignment(line: &str) -> bool {
    line.split_once('=').is_some_and(|(n, _)| is_name(n))
}

/// Reads the syntax from the content, falling back to the file name: YAML manifests, Dockerfiles,
/// shell scripts, and files of plain `NAME=value` lines, which are NCCL config files when named
/// `*.conf` (so `dup.conf` is read the way NCCL reads it, first line winning) and dotenv files
/// otherwise.
pub fn detect(text: &str, path: &str) -> Syntax {
    let by_name = syntax_for(path);
    let mut plain = 0usize;
    let mut other = 0usize;
    let mut first: Option<&str> = None;
    for raw in text.lines().take(4000) {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("#!") && first.is_none() {
            return Syntax::Shell;
        }
        if line.starts_with('#') {
            if line.starts_with("#SBATCH") || line.starts_with("#PBS") || line.starts_with("#$ ") {
                return Syntax::Shell;
            }
            continue;
        }
        let first_line = *first.get_or_insert(line);
        if first_line == line
            && (line == "---" || line.starts_with("apiVersion:") || line.starts_with("kind:"))
        {
            return Syntax::Yaml;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if first_line == line && matches!(word, "FROM" | "ARG") && by_name != Syntax::Shell {
            return Syntax::Dockerfile;
        }
        if first_line == line && word == "FROM" && line.split_whitespace().count() >= 2 {
            return Syntax::Dockerfile;
        }
        if line.starts_with("env:") || line.starts_with("- name:") {
            return Syntax::Yaml;
        }
        if plain_assignment(line) && !line.contains(['"', '\'', '$', '`', ';']) {
            plain += 1;
        } else {
            other += 1;
        }
    }
    if other == 0 && plain > 0 {
        let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
        return if lower.ends_with(".conf") {
            Syntax::NcclConf
        } else if by_name == Syntax::Shell {
            Syntax::Dotenv
        } else {
            by_name
        };
    }
    match by_name {
        Syntax::NcclConf if other > 0 && plain == 0 => Syntax::Shell,
        s => s,
    }
}

/// At most `n` characters of `s`, for error messages that must not echo a huge line.
pub fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).filter(|c| !c.is_control()).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}

/// Checks the input bounds and binary content before any reader runs.
fn check_bounds(text: &str, source: &str) -> Result<()> {
    if text.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{source}: {} bytes, more than the {} MiB lint reads; split the file",
            text.len(),
            MAX_FILE_BYTES >> 20
        );
    }
    if text.contains('\0') {
        bail!("{source}: binary data (NUL bytes): not an env file, job script, manifest or nccl.conf");
    }
    for (i, line) in text.split('\n').enumerate() {
        if line.len() > MAX_LINE_BYTES {
            bail!(
                "{source}:{}: a line of {} bytes, more than the {} KiB lint reads (starts {:?})",
                i + 1,
                line.len(),
                MAX_LINE_BYTES >> 10,
                excerpt(line, 40)
            );
        }
    }
    Ok(())
}

/// Parses one file. Binary content, oversize input and unbalanced quotes are errors naming the
/// file and line.
pub fn parse(text: &str, source: &str, syntax: Syntax) -> Result<Vec<Assignment>> {
    check_bounds(text, source)?;
    match syntax {
        Syntax::NcclConf => Ok(parse_conf(text, source)),
        Syntax::Yaml => super::yaml::parse(text, source),
        Syntax::Dockerfile => parse_dockerfile(text, source),
        Syntax::Dotenv => parse_dotenv(text, source),
        Syntax::Shell | Syntax::Environment => Shell::new(text, source).run(),
    }
}

fn parse_conf(text: &str, source: &str) -> Vec<Assignment> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        // NCCL before 2.26 did not skip `#` lines: one with a `=` set a variable named after
        // the text before it (src/misc/param.cc at 2.25.1 vs 2.26.2). Kept for lint to judge.
        if line.starts_with('#') && !line.contains('=') {
            continue;
        }
        if let Some((name, value)) = line.split_once('=') {
            out.push(Assignment::new(
                name,
                Some(value),
                source,
                i + 1,
                Syntax::NcclConf,
            ));
        }
    }
    out
}

fn parse_dotenv(text: &str, source: &str) -> Result<Vec<Assignment>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim_end();
        if !is_name(name) {
            continue;
        }
        let value = value.trim_start();
        let value = if value.starts_with(['"', '\'']) {
            let toks = Shell::new(value, source)
                .words_of_line()
                .map_err(|e| anyhow::anyhow!("{source}:{}: {e}: fix the quoting on this line", i + 1))?;
            toks.into_iter().next().map(|w| w.text).unwrap_or_default()
        } else {
            // An unquoted value ends at ` #` (a comment), as dotenv readers do.
            value.split(" #").next().unwrap_or("").trim_end().to_string()
        };
        out.push(Assignment::new(name, Some(&value), source, i + 1, Syntax::Dotenv));
    }
    Ok(out)
}

/// Dockerfile `ENV NAME=value ...` and the legacy `ENV NAME value`, with `\` continuations.
fn parse_dockerfile(text: &str, source: &str) -> Result<Vec<Assignment>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, raw)) = lines.next() {
        let mut logical = raw.trim_end().to_string();
        while logical.ends_with('\\') {
            logical.pop();
            logical.push(' ');
            match lines.next() {
                Some((_, next)) if next.trim_start().starts_with('#') => {}
                Some((_, next)) => logical.push_str(next.trim_end()),
                None => break,
            }
        }
        let t = logical.trim_start();
        let (kw, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        if !kw.eq_ignore_ascii_case("ENV") {
            continue;
        }
        let words = Shell::new(rest, source)
            .words_of_line()
            .map_err(|e| anyhow::anyhow!("{source}:{}: {e}: fix the quoting of this ENV", i + 1))?;
        let line = i + 1;
        if words.first().is_some_and(|w| !w.text.contains('=')) {
            // `ENV NAME value with spaces`: one variable, the rest of the line is the value.
            let name = words[0].text.as_str();
            if is_name(name)
                && let Some(value) = rest.trim_start().strip_prefix(name)
            {
                out.push(Assignment::new(
                    name,
                    Some(value.trim()),
                    source,
                    line,
                    Syntax::Dockerfile,
                ));
            }
            continue;
        }
        for w in words {
            if let Some((name, value)) = w.text.split_once('=')
                && is_name(name)
            {
                let mut a = Assignment::new(name, Some(value), source, line, Syntax::Dockerfile);
                a.dynamic = w.dynamic;
                out.push(a);
            }
        }
    }
    Ok(out)
}

/// A shell word with the line it starts on and whether it holds an expansion.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    line: usize,
    /// Contains `$(...)`, backquotes or a `$VAR` that lint could not resolve.
    dynamic: bool,
    /// Written with quotes somewhere (so `if` in quotes is not the keyword).
    quoted: bool,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word,
    /// `;`, `&`, `&&`, `||`, `|`, `(`, `)`, newline: ends a simple command.
    Sep,
    /// `;;` (ends a `case` arm).
    CaseSep,
    /// A redirection with its target, already consumed.
    Redirect,
}

const LAUNCHERS: [&str; 6] = [
    "mpirun",
    "mpiexec",
    "orterun",
    "prterun",
    "oshrun",
    "mpiexec.hydra",
];

/// A one-pass reader of shell scripts: tokens, then simple commands.
struct Shell<'a> {
    src: &'a str,
    source: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
    out: Vec<Assignment>,
    /// Names exported anywhere (`export NAME`, `declare -x NAME`).
    exported: HashSet<String>,
    allexport: bool,
    /// Values assigned so far, for `$VAR` and `${VAR}` in later values.
    known: std::collections::HashMap<String, String>,
    /// Open `if`/`case` statements: (id, arm).
    branch: Vec<(u32, u32)>,
    next_branch: u32,
    /// Pending here-document delimiters to skip once the current line ends.
    heredocs: Vec<(String, bool)>,
    pub runs_commands: bool,
}

impl<'a> Shell<'a> {
    fn new(src: &'a str, source: &'a str) -> Self {
        Shell {
            src,
            source,
            chars: src.char_indices().peekable(),
            line: 1,
            out: Vec::new(),
            exported: HashSet::new(),
            allexport: false,
            known: Default::default(),
            branch: Vec::new(),
            next_branch: 0,
            heredocs: Vec::new(),
            runs_commands: false,
        }
    }

    /// The words of a single line (no commands): for dotenv values and Dockerfile ENV.
    fn words_of_line(mut self) -> Result<Vec<Word>, String> {
        let mut words = Vec::new();
        loop {
            match self.token()? {
                None => return Ok(words),
                Some((Tok::Word, Some(w))) => words.push(w),
                Some(_) => {}
            }
        }
    }

    /// Skips the bodies of here-documents whose `<<DELIM` appeared on the line just ended.
    fn skip_heredocs(&mut self) {
        for (delim, strip_tabs) in std::mem::take(&mut self.heredocs) {
            loop {
                let Some(&(start, _)) = self.chars.peek() else {
                    return;
                };
                let rest = &self.src[start..];
                let end = rest.find('\n').map_or(rest.len(), |e| e + 1);
                let body = rest[..end].trim_end_matches(['\n', '\r']);
                let body = if strip_tabs {
                    body.trim_start_matches('\t')
                } else {
                    body
                };
                for _ in rest[..end].chars() {
                    self.chars.next();
                }
                self.line += 1;
                if body == delim {
                    break;
                }
            }
        }
    }

    /// Reads the next token. `Ok(None)` at the end of input.
    fn token(&mut self) -> Result<Option<(Tok, Option<Word>)>, String> {
        // Blanks and comments.
        loop {
            match self.chars.peek().map(|&(_, c)| c) {
                Some(' ' | '\t' | '\r') => {
                    self.chars.next();
                }
                Some('\\') => {
                    let mut ahead = self.chars.clone();
                    ahead.next();
                    if ahead.peek().map(|&(_, c)| c) == Some('\n') {
                        self.chars.next();
                        self.chars.next();
                        self.line += 1;
                    } else {
                        break;
                    }
                }
                Some('#') => {
                    let start = self.chars.peek().map_or(0, |&(i, _)| i);
                    let rest = &self.src[start..];
                    let end = rest.find('\n').unwrap_or(rest.len());
                    let comment = &rest[..end];
                    if let Some(args) = comment.strip_prefix("#SBATCH") {
                        self.sbatch(args);
                    }
                    for _ in comment.chars() {
                        self.chars.next();
                    }
                }
                _ => break,
            }
        }
        let Some(&(_, c)) = self.chars.peek() else {
            return Ok(None);
        };
        match c {
            '\n' => {
                self.chars.next();
                self.line += 1;
                self.skip_heredocs();
                return Ok(Some((Tok::Sep, None)));
            }
            ';' => {
                self.chars.next();
                if self.chars.peek().map(|&(_, c)| c) == Some(';') {
                    self.chars.next();
                    return Ok(Some((Tok::CaseSep, None)));
                }
                return Ok(Some((Tok::Sep, None)));
            }
            '&' | '|' | '(' | ')' => {
                self.chars.next();
                if matches!(c, '&' | '|') && self.chars.peek().map(|&(_, x)| x) == Some(c) {
                    self.chars.next();
                }
                return Ok(Some((Tok::Sep, None)));
            }
            '<' | '>' => {
                // A redirection: its target is not a word of the command; a here-document's
                // body is skipped once its line ends.
                self.chars.next();
                let mut heredoc = None;
                if c == '<' && self.chars.peek().map(|&(_, x)| x) == Some('<') {
                    self.chars.next();
                    match self.chars.peek().map(|&(_, x)| x) {
                        Some('<') => {
                            self.chars.next();
                        }
                        Some('-') => {
                            self.chars.next();
                            heredoc = Some(true);
                        }
                        _ => heredoc = Some(false),
                    }
                } else if self
                    .chars
                    .peek()
                    .is_some_and(|&(_, x)| x == '>' || x == '&' || x == '|')
                {
                    self.chars.next();
                }
                while self.chars.peek().is_some_and(|&(_, x)| x == ' ' || x == '\t') {
                    self.chars.next();
                }
                if self
                    .chars
                    .peek()
                    .is_some_and(|&(_, x)| !matches!(x, '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>'))
                {
                    let target = self.word()?;
                    if let Some(strip) = heredoc {
                        self.heredocs.push((target.text, strip));
                    }
                }
                return Ok(Some((Tok::Redirect, None)));
            }
            _ => {}
        }
        Ok(Some((Tok::Word, Some(self.word()?))))
    }

    /// Reads one word at the current position.
    fn word(&mut self) -> Result<Word, String> {
        let line = self.line;
        let mut w = Word {
            text: String::new(),
            line,
            dynamic: false,
            quoted: false,
            note: None,
        };
        while let Some(&(_, c)) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' | '<' | '>' => break,
                '\'' => {
                    self.chars.next();
                    w.quoted = true;
                    loop {
                        match self.chars.next() {
                            Some((_, '\'')) => break,
                            Some((_, x)) => {
                                if x == '\n' {
                                    self.line += 1;
                                }
                                w.text.push(x);
                            }
                            None => return Err(format!("unclosed single quote (opened on line {line})")),
                        }
                    }
                }
                '"' => {
                    self.chars.next();
                    w.quoted = true;
                    loop {
                        match self.chars.next() {
                            Some((_, '"')) => break,
                            Some((_, '\\')) => match self.chars.next() {
                                Some((_, x @ ('"' | '\\' | '$' | '`'))) => w.text.push(x),
                                Some((_, '\n')) => self.line += 1,
                                Some((_, x)) => {
                                    w.text.push('\\');
                                    w.text.push(x);
                                }
                                None => return Err(format!("unclosed double quote (opened on line {line})")),
                            },
                            Some((_, '$')) => self.dollar(&mut w)?,
                            Some((_, '`')) => self.backquote(&mut w)?,
                            Some((_, x)) => {
                                if x == '\n' {
                                    self.line += 1;
                                }
                                w.text.push(x);
                            }
                            None => return Err(format!("unclosed double quote (opened on line {line})")),
                        }
                    }
                }
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        Some((_, '\n')) => self.line += 1,
                        Some((_, x)) => w.text.push(x),
                        None => {}
                    }
                }
                '$' => {
                    self.chars.next();
                    self.dollar(&mut w)?;
                }
                '`' => {
                    self.chars.next();
                    self.backquote(&mut w)?;
                }
                c => {
                    self.chars.next();
                    w.text.push(c);
                }
            }
        }
        Ok(w)
    }

    fn backquote(&mut self, w: &mut Word) -> Result<(), String> {
        w.dynamic = true;
        w.text.push('`');
        loop {
            match self.chars.next() {
                Some((_, '`')) => break,
                Some((_, '\\')) => {
                    if let Some((_, x)) = self.chars.next() {
                        w.text.push(x);
                    }
                }
                Some((_, x)) => {
                    if x == '\n' {
                        self.line += 1;
                    }
                    w.text.push(x);
                }
                None => return Err("unclosed backquote".into()),
            }
        }
        w.text.push('`');
        Ok(())
    }

    /// After a `$`: `$(...)`, `${...}` (with `:-`/`:=` defaults), `$NAME`, or a plain `$`.
    fn dollar(&mut self, w: &mut Word) -> Result<(), String> {
        match self.chars.peek().map(|&(_, c)| c) {
            Some('(') => {
                self.chars.next();
                w.dynamic = true;
                w.text.push_str("$(");
                let mut depth = 1usize;
                loop {
                    match self.chars.next() {
                        Some((_, '(')) => depth += 1,
                        Some((_, ')')) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some((_, '\n')) => self.line += 1,
                        Some(_) => {}
                        None => return Err("unclosed $( command substitution".into()),
                    }
                }
                w.text.push_str("...)");
            }
            Some('{') => {
                self.chars.next();
                let mut inner = String::new();
                loop {
                    match self.chars.next() {
                        Some((_, '}')) => break,
                        Some((_, '\n')) => {
                            self.line += 1;
                            inner.push('\n');
                        }
                        Some((_, x)) => inner.push(x),
                        None => return Err("unclosed ${ parameter expansion".into()),
                    }
                }
                self.expand(w, &inner);
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&(_, c)) = self.chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                self.expand(w, &name);
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.chars.next();
                w.dynamic = true;
                w.text.push('$');
                w.text.push(c);
            }
            _ => w.text.push('$'),
        }
        Ok(())
    }

    /// `NAME`, `NAME:-default`, `NAME-default`, `NAME:=default`, `NAME=default`: a variable this
    /// file set is substituted; otherwise the default is taken, with a note that lint assumed
    /// the variable unset in the launching environment.
    fn expand(&mut self, w: &mut Word, inner: &str) {
        let split = inner
            .find(":-")
            .map(|i| (i, 2))
            .or_else(|| inner.find(":=").map(|i| (i, 2)))
            .or_else(|| {
                inner
                    .find(['-', '='])
                    .filter(|&i| is_name(&inner[..i]))
                    .map(|i| (i, 1))
            });
        let (name, default) = match split {
            Some((i, n)) if is_name(&inner[..i]) => (&inner[..i], Some(&inner[i + n..])),
            _ => (inner, None),
        };
        if !is_name(name) {
            w.dynamic = true;
            w.text.push_str("${");
            w.text.push_str(inner);
            w.text.push('}');
            return;
        }
        if let Some(v) = self.known.get(name) {
            w.text.push_str(v);
        } else if let Some(d) = default {
            w.text.push_str(d);
            w.note = Some(format!(
                "read as the default {d:?} of ${{{inner}}}: lint assumes {name} is not set where the script runs"
            ));
        } else {
            w.dynamic = true;
            w.text.push('$');
            w.text.push_str(name);
        }
    }

    fn push(&mut self, name: &str, value: Option<&str>, w: &Word, exported: bool) {
        let mut a = Assignment::new(name, value, self.source, w.line, Syntax::Shell);
        a.exported = exported || self.allexport;
        a.dynamic = w.dynamic;
        a.note = w.note.clone();
        a.branch = self.branch.clone();
        if let Some(v) = value
            && !w.dynamic
        {
            self.known.insert(name.to_string(), v.to_string());
        }
        self.out.push(a);
    }

    /// `--export=` of sbatch/srun/salloc: `ALL`, `NONE`, `NIL`, names, and `NAME=value`. A
    /// token without `=` that cannot be a variable name is taken as the rest of the value
    /// before it (`NCCL_IB_HCA=mlx5_0,mlx5_1`).
    fn export_list(&mut self, list: &str, w: &Word) {
        let mut pending: Option<(String, String)> = None;
        for tok in list.split(',') {
            let tok = tok.trim();
            match tok.split_once('=') {
                Some((n, v)) if is_name(n) => {
                    if let Some((pn, pv)) = pending.take() {
                        self.push(&pn, Some(&pv), w, true);
                    }
                    pending = Some((n.to_string(), v.to_string()));
                }
                _ if matches!(tok, "ALL" | "NONE" | "NIL" | "") => {}
                _ if tok
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
                {
                    if let Some((pn, pv)) = pending.take() {
                        self.push(&pn, Some(&pv), w, true);
                    }
                    self.push(tok, None, w, true);
                }
                _ => {
                    if let Some((_, pv)) = pending.as_mut() {
                        pv.push(',');
                        pv.push_str(tok);
                    }
                }
            }
        }
        if let Some((pn, pv)) = pending {
            self.push(&pn, Some(&pv), w, true);
        }
    }

    fn sbatch(&mut self, args: &str) {
        let line = self.line;
        let Ok(words) = Shell::new(args, self.source).words_of_line() else {
            return;
        };
        let mut it = words.iter();
        while let Some(x) = it.next() {
            let list = match x.text.strip_prefix("--export=") {
                Some(l) => Some(l.to_string()),
                None if x.text == "--export" => it.next().map(|n| n.text.clone()),
                None => None,
            };
            if let Some(l) = list {
                let mut w = x.clone();
                w.line = line;
                self.export_list(&l, &w);
            }
        }
    }

    /// One simple command: leading keywords and prefix assignments, then the command's words.
    fn command(&mut self, words: Vec<Word>) {
        let mut i = 0;
        while let Some(w) = words.get(i) {
            if w.quoted {
                break;
            }
            match w.text.as_str() {
                "if" | "case" => {
                    self.next_branch += 1;
                    self.branch.push((self.next_branch, 0));
                    if w.text == "case" {
                        // `case WORD in`: the rest is not a command.
                        return;
                    }
                }
                "elif" | "else" => {
                    if let Some(top) = self.branch.last_mut() {
                        top.1 += 1;
                    }
                }
                "fi" | "esac" => {
                    self.branch.pop();
                }
                "then" | "do" | "done" | "while" | "until" | "{" | "}" | "!" | "time" => {}
                "for" | "select" | "function" => return,
                _ => break,
            }
            i += 1;
        }
        let mut prefix: Vec<&Word> = Vec::new();
        while let Some(w) = words.get(i) {
            match w.text.split_once('=') {
                Some((n, _)) if is_name(n) => prefix.push(w),
                _ => break,
            }
            i += 1;
        }
        let rest = &words[i.min(words.len())..];
        let Some(cmd) = rest.first() else {
            for w in prefix {
                if let Some((n, v)) = w.text.split_once('=') {
                    self.push(n, Some(v), w, false);
                }
            }
            return;
        };
        // Prefix assignments are in the environment of this one command.
        for w in prefix {
            if let Some((n, v)) = w.text.split_once('=') {
                self.push(n, Some(v), w, true);
            }
        }
        let name = cmd.text.rsplit('/').next().unwrap_or(&cmd.text).to_string();
        let args = &rest[1..];
        match name.as_str() {
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                let exports = name == "export"
                    || (name != "local"
                        && args
                            .iter()
                            .any(|a| a.text.starts_with('-') && a.text.contains('x')));
                for a in args.iter().filter(|a| !a.text.starts_with('-')) {
                    match a.text.split_once('=') {
                        Some((n, v)) if is_name(n) => self.push(n, Some(v), a, exports),
                        None if exports && is_name(&a.text) => {
                            self.exported.insert(a.text.clone());
                        }
                        _ => {}
                    }
                }
            }
            "set" => {
                for a in args {
                    match a.text.as_str() {
                        "+a" => self.allexport = false,
                        "allexport" => self.allexport = true,
                        t if t.starts_with('-') && !t.starts_with("--") && t.contains('a') => {
                            self.allexport = true
                        }
                        _ => {}
                    }
                }
            }
            "env" => {
                self.runs_commands = true;
                for a in args {
                    match a.text.split_once('=') {
                        Some((n, v)) if is_name(n) => self.push(n, Some(v), a, true),
                        _ if a.text.starts_with('-') => {}
                        _ => break,
                    }
                }
            }
            "srun" | "sbatch" | "salloc" => {
                self.runs_commands = true;
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    if let Some(l) = a.text.strip_prefix("--export=") {
                        self.export_list(l, a);
                    } else if a.text == "--export"
                        && let Some(l) = it.next()
                    {
                        let l2 = l.text.clone();
                        self.export_list(&l2, l);
                    }
                }
            }
            "docker" | "podman" | "enroot" => {
                self.runs_commands = true;
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    let target = match a.text.as_str() {
                        "-e" | "--env" => it.next(),
                        t if t.starts_with("--env=") => Some(a),
                        _ => None,
                    };
                    if let Some(t) = target {
                        let body = t.text.strip_prefix("--env=").unwrap_or(&t.text);
                        if let Some((n, v)) = body.split_once('=')
                            && is_name(n)
                        {
                            let (n, v) = (n.to_string(), v.to_string());
                            self.push(&n, Some(&v), t, true);
                        }
                    }
                }
            }
            n if LAUNCHERS.contains(&n) || n.starts_with("mpirun") => {
                self.runs_commands = true;
                let mut it = args.iter();
                while let Some(a) = it.next() {
                    match a.text.as_str() {
                        "-x" | "--x" => {
                            let Some(t) = it.next() else { break };
                            match t.text.split_once('=') {
                                Some((n, v)) if is_name(n) => {
                                    let (n, v) = (n.to_string(), v.to_string());
                                    self.push(&n, Some(&v), t, true)
                                }
                                None if is_name(&t.text) => {
                                    let n = t.text.clone();
                                    self.push(&n, None, t, true)
                                }
                                _ => {}
                            }
                        }
                        "-genv" | "-env" | "--env" => {
                            let Some(t) = it.next() else { break };
                            if let Some((n, v)) = t.text.split_once('=').filter(|(n, _)| is_name(n)) {
                                let (n, v) = (n.to_string(), v.to_string());
                                self.push(&n, Some(&v), t, true);
                            } else if is_name(&t.text)
                                && let Some(v) = it.next()
                            {
                                let n = t.text.clone();
                                let mut w = v.clone();
                                w.line = t.line;
                                self.push(&n, Some(&v.text), &w, true);
                            }
                        }
                        "-genvlist" | "-envlist" => {
                            if let Some(t) = it.next() {
                                for n in t.text.split(',').filter(|n| is_name(n)) {
                                    self.push(n, None, t, true);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            "source" | "." | "echo" | "printf" | "cd" | "unset" | "module" | "ml" | "[" | "[[" | "test"
            | "true" | "false" | ":" | "exit" | "return" | "shift" | "ulimit" | "umask" | "trap" | "wait"
            | "read" | "alias" | "eval" => {}
            _ => self.runs_commands = true,
        }
    }

    fn run(mut self) -> Result<Vec<Assignment>> {
        let mut words: Vec<Word> = Vec::new();
        loop {
            let tok = match self.token() {
                Ok(t) => t,
                Err(e) => bail!("{}:{}: {e}: fix the quoting on this line", self.source, self.line),
            };
            match tok {
                None => break,
                Some((Tok::Word, Some(w))) => words.push(w),
                Some((Tok::Word | Tok::Redirect, _)) => {}
                Some((Tok::Sep, _)) => self.command(std::mem::take(&mut words)),
                Some((Tok::CaseSep, _)) => {
                    self.command(std::mem::take(&mut words));
                    if let Some(top) = self.branch.last_mut() {
                        top.1 += 1;
                    }
                }
            }
        }
        self.command(words);
        // A script that launches nothing only sets variables for whoever sources it; only
        // in a script that runs commands does an unexported variable never reach them.
        // `export NAME` anywhere exports the name's assignments (a shell keeps it exported), and
        // a name handed on with its value (`mpirun -x NAME=$NAME`, `NAME=$NAME srun`) reaches
        // the tasks that way. A bare `mpirun -x NAME` reads mpirun's environment, where an
        // unexported variable is not.
        let passed: HashSet<String> = self
            .out
            .iter()
            .filter(|a| a.exported && a.value.is_some())
            .map(|a| a.name.clone())
            .collect();
        self.exported.extend(passed);
        for a in &mut self.out {
            a.exported |= !self.runs_commands || self.exported.contains(&a.name);
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(text: &str, syntax: Syntax) -> Vec<(String, Option<String>, usize)> {
        parse(text, "f", syntax)
            .expect("parse")
            .into_iter()
            .map(|a| (a.name, a.value, a.line))
            .collect()
    }

    #[test]
    fn shell_forms() {
        let text = "# comment\nexport NCCL_IB_HCA='=mlx5_0:1'\nNCCL_DEBUG=\"INFO\" # trailing\nexport A=1 B=2\n\
mpirun -np 16 -x NCCL_ALGO=Ring -x NCCL_SOCKET_IFNAME ./app\n";
        let v = vals(text, Syntax::Shell);
        assert_eq!(v[0], ("NCCL_IB_HCA".into(), Some("=mlx5_0:1".into()), 2));
        assert_eq!(v[1], ("NCCL_DEBUG".into(), Some("INFO".into()), 3));
        assert_eq!(v.len(), 6);
        assert_eq!(v[4], ("NCCL_ALGO".into(), Some("Ring".into()), 5));
        assert_eq!(v[5], ("NCCL_SOCKET_IFNAME".into(), None, 5));
    }

    #[test]
    fn command_lists_branches_defaults_and_continuations() {
        let text = "if [ -e /dev/infiniband ]; then export NCCL_IB_DISABLE=0;fi\n\
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}\n\
: ${NCCL_SOCKET_IFNAME:=eth0}\n\
export NCCL_A=1 \\\n  NCCL_B=2 \\\n  NCCL_C=\"x y\"\n\
NCCL_X=1 srun ./app && echo ok\n";
        let a = parse(text, "job.sh", Syntax::Shell).expect("parse");
        let got: Vec<(&str, Option<&str>, usize)> = a
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref(), a.line))
            .collect();
        assert_eq!(
            got,
            [
                ("NCCL_IB_DISABLE", Some("0"), 1),
                ("NCCL_DEBUG", Some("WARN"), 2),
                ("NCCL_A", Some("1"), 4),
                ("NCCL_B", Some("2"), 5),
                ("NCCL_C", Some("x y"), 6),
                ("NCCL_X", Some("1"), 7),
            ]
        );
        assert!(
            a[1].note
                .as_deref()
                .is_some_and(|n| n.contains("NCCL_DEBUG is not set"))
        );
        assert_eq!(a[0].branch.len(), 1);
        assert!(a[1].branch.is_empty());
    }

    #[test]
    fn unexported_variables_in_scripts_that_launch() {
        let a = parse(
            "NCCL_DEBUG=INFO\nNCCL_ALGO=Ring\nexport NCCL_ALGO\nsrun ./app\n",
            "job.sh",
            Syntax::Shell,
        )
        .expect("parse");
        assert!(!a[0].exported);
        assert!(a[1].exported, "exported by name later");
        let env = parse("NCCL_DEBUG=INFO\n", "nccl.env", Syntax::Shell).expect("parse");
        assert!(
            env[0].exported,
            "a file that runs nothing is sourced by something else"
        );
        let allexport = parse("set -a\nNCCL_DEBUG=INFO\nsrun x\n", "j", Syntax::Shell).expect("parse");
        assert!(allexport[0].exported);
        let passed = parse(
            "NCCL_IB_HCA==mlx5_0\nmpirun -x NCCL_IB_HCA=$NCCL_IB_HCA ./a\n",
            "j",
            Syntax::Shell,
        )
        .expect("parse");
        assert!(passed[0].exported, "handed on by mpirun -x");
        assert_eq!(
            passed[1].value.as_deref(),
            Some("=mlx5_0"),
            "$NAME expands to the value set above"
        );
        let bare = parse(
            "NCCL_IB_HCA==mlx5_0\nmpirun -x NCCL_IB_HCA ./a\n",
            "j",
            Syntax::Shell,
        )
        .expect("parse");
        assert!(!bare[0].exported, "mpirun -x NAME cannot see a shell variable");
    }

    #[test]
    fn launchers_and_batch_exports() {
        let text = "#!/bin/bash\n#SBATCH --export=ALL,NCCL_DEBUG=WARN\n\
srun --export=ALL,NCCL_IB_HCA==mlx5_0,mlx5_1,NCCL_ALGO=Ring ./a\n\
mpiexec -genv NCCL_PROTO Simple -genv NCCL_NET=IB ./b\n\
docker run -e NCCL_SOCKET_IFNAME=eth0 img\n\
cat > nccl.conf <<EOF\nNCCL_IGNORED=1\nEOF\n";
        let v = vals(text, Syntax::Shell);
        assert_eq!(
            v,
            [
                ("NCCL_DEBUG".to_string(), Some("WARN".to_string()), 2),
                ("NCCL_IB_HCA".into(), Some("=mlx5_0,mlx5_1".into()), 3),
                ("NCCL_ALGO".into(), Some("Ring".into()), 3),
                ("NCCL_PROTO".into(), Some("Simple".into()), 4),
                ("NCCL_NET".into(), Some("IB".into()), 4),
                ("NCCL_SOCKET_IFNAME".into(), Some("eth0".into()), 5),
            ]
        );
    }

    #[test]
    fn dockerfile_dotenv_and_conf() {
        let d = vals(
            "FROM nvcr.io/nvidia/pytorch:24.01-py3\nENV NCCL_DEBUG=WARN \\\n    NCCL_IB_HCA==mlx5_0\nENV NCCL_ALGO Ring\n",
            Syntax::Dockerfile,
        );
        assert_eq!(d[0], ("NCCL_DEBUG".into(), Some("WARN".into()), 2));
        assert_eq!(d[1], ("NCCL_IB_HCA".into(), Some("=mlx5_0".into()), 2));
        assert_eq!(d[2], ("NCCL_ALGO".into(), Some("Ring".into()), 4));
        let e = vals(
            "# x\nNCCL_DEBUG=\"INFO\"\nexport NCCL_ALGO=Ring # c\n",
            Syntax::Dotenv,
        );
        assert_eq!(e[0].1.as_deref(), Some("INFO"));
        assert_eq!(e[1].1.as_deref(), Some("Ring"));
    }

    #[test]
    fn detection_by_content() {
        assert_eq!(
            detect("NCCL_DEBUG=INFO\nNCCL_DEBUG=WARN\n", "dup.conf"),
            Syntax::NcclConf
        );
        assert_eq!(detect("NCCL_DEBUG=INFO\n", "settings"), Syntax::Dotenv);
        assert_eq!(detect("NCCL_DEBUG=INFO\n", "nccl.env"), Syntax::Dotenv);
        assert_eq!(detect("NCCL_DEBUG=INFO\n", "/etc/nccl.conf"), Syntax::NcclConf);
        assert_eq!(detect("export NCCL_DEBUG=INFO\n", "x.conf"), Syntax::Shell);
        assert_eq!(detect("#!/bin/bash\nNCCL_DEBUG=INFO\n", "x.conf"), Syntax::Shell);
        assert_eq!(detect("apiVersion: v1\nkind: Pod\n", "pod"), Syntax::Yaml);
        assert_eq!(detect("env:\n  - name: NCCL_DEBUG\n", "out.txt"), Syntax::Yaml);
        assert_eq!(
            detect("FROM ubuntu:22.04\nENV NCCL_DEBUG=INFO\n", "build"),
            Syntax::Dockerfile
        );
        assert_eq!(detect("#SBATCH -N 2\nsrun x\n", "job"), Syntax::Shell);
    }

    #[test]
    fn junk_never_panics_in_any_reader() {
        let alphabet: Vec<char> =
            "NCL_=;&|()<>$`'\"\\#{}:-+ \t\nxX0\r!*?[]ENVFROMexportif fi -x -genv --export= <<EOF \u{85}é"
                .chars()
                .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..400 {
            let len = 1 + (round * 7) % 300;
            let text: String = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            for syntax in [
                Syntax::Shell,
                Syntax::Dotenv,
                Syntax::NcclConf,
                Syntax::Yaml,
                Syntax::Dockerfile,
            ] {
                let _ = parse(&text, "junk", syntax);
            }
            let _ = detect(&text, "junk");
        }
        for hostile in [
            "cat <<EOF\nno end",
            "X=$(((((",
            "X=${",
            "X=`",
            "if if if then",
            ";;;;)))(((",
            "export",
            "-x",
        ] {
            let _ = parse(hostile, "h", Syntax::Shell);
        }
    }

    #[test]
    fn nccl_conf_is_verbatim() {
        let v = vals(
            "# c\nNCCL_IB_HCA=\"=mlx5_0\"\nNCCL_DEBUG=INFO \nno equals\n",
            Syntax::NcclConf,
        );
        assert_eq!(v[0].1.as_deref(), Some("\"=mlx5_0\""));
        assert_eq!(v[1].1.as_deref(), Some("INFO "));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn bad_quoting_binary_and_bounds_name_the_line() {
        let err = parse("A=1\nexport B='open\n", "job.sh", Syntax::Shell).expect_err("quote");
        assert!(err.to_string().contains("job.sh:"), "{err}");
        assert!(parse("\0\0", "x.bin", Syntax::Shell).is_err());
        let long = format!("NCCL_DEBUG={}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let err = parse(&long, "big.env", Syntax::Shell)
            .expect_err("long")
            .to_string();
        assert!(err.contains("big.env:1") && err.len() < 300, "{err}");
    }
}
