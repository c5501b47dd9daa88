//! `GroupChild`: the one way nccltune runs another program. The child is started as the leader
//! of its own process group, so that everything it starts (a wrapper script's `sleep`, the
//! ranks `mpirun` forks) can be signalled together, and so that a Ctrl-C at the terminal,
//! which goes to nccltune's foreground group, reaches the child only when nccltune forwards it.
//!
//! The leader's exit is observed without reaping it (`waitid(WNOWAIT)`): while the leader is an
//! unreaped zombie its PID cannot be reused, so the group can still be killed safely. Once the
//! leader is reaped, whatever is left of the group is killed first. Dropping a `GroupChild`
//! kills and reaps the group, so no error path leaves a process behind.
//!
//! Used by the probe runner (`SystemRunner`) and by `bench run`.

use rustix::process::{Pid, WaitId, WaitIdOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The signals a group is sent (`Signal::TERM`, `Signal::KILL`, ...).
pub use rustix::process::Signal;

/// A child process leading its own process group.
#[derive(Debug)]
pub struct GroupChild {
    child: Child,
    pgid: Pid,
    status: Option<ExitStatus>,
}

/// How `wait_until` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The leader exited by itself; its status. The rest of its group was killed.
    Exited(ExitStatus),
    /// The deadline passed; the whole group was killed and the leader reaped with this status.
    Deadline(ExitStatus),
}

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group (`setpgid(0, 0)` in the child before
    /// `exec`, done by the standard library).
    pub fn spawn(cmd: &mut Command) -> io::Result<GroupChild> {
        let child = cmd.process_group(0).spawn()?;
        let pgid = Pid::from_child(&child);
        Ok(GroupChild {
            child,
            pgid,
            status: None,
        })
    }

    /// The standard library's handle, to take the pipes from.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The leader's PID, which is also the group's id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig` to every process of the group. A group that is already gone is not an error.
    pub fn signal(&self, sig: Signal) -> io::Result<()> {
        if self.status.is_some() {
            // Reaped leader and killed group: nothing of ours may be left to signal, and the
            // id may by now belong to someone else.
            return Ok(());
        }
        match rustix::process::kill_process_group(self.pgid, sig) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// True when the leader has exited. It stays unreaped (a zombie) until `finish`, so its
    /// PID, and with it the group id, cannot be reused meanwhile.
    pub fn leader_exited(&self) -> io::Result<bool> {
        if self.status.is_some() {
            return Ok(true);
        }
        let opts = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG;
        match rustix::process::waitid(WaitId::Pid(self.pgid), opts) {
            Ok(s) => Ok(s.is_some()),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Kills whatever is left of the group (SIGKILL) and reaps the leader; returns its status.
    /// Idempotent.
    pub fn finish(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let _ = self.signal(Signal::KILL);
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }

    /// Waits for the leader to exit until `deadline`, then kills the whole group and reaps the
    /// leader either way. Polls with a growing nap (1 ms to 20 ms), so a quick probe costs
    /// about a millisecond.
    pub fn wait_until(&mut self, deadline: Instant) -> io::Result<Waited> {
        let mut nap = Duration::from_millis(1);
        loop {
            if self.leader_exited()? {
                return Ok(Waited::Exited(self.finish()?));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::Deadline(self.finish()?));
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }

    /// Asks the group to stop with `sig`, waits up to `grace` for the leader, then kills the
    /// group and reaps the leader.
    pub fn stop(&mut self, sig: Signal, grace: Duration) -> io::Result<ExitStatus> {
        self.signal(sig)?;
        match self.wait_until(Instant::now() + grace)? {
            Waited::Exited(s) | Waited::Deadline(s) => Ok(s),
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn alive(pid: u32) -> bool {
        // A zombie (state Z) has finished running; only its parent's reaping is missing.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }

    fn wait_gone(pid: u32) -> bool {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 1000 & echo $! >> {p}; sleep 1000 & echo $! >> {p}; wait",
            p = pids.display()
        );
        let mut c =
            GroupChild::spawn(Command::new("sh").args(["-c", &script]).stdout(Stdio::null())).expect("spawn");
        let leader = c.id();
        let end = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&pids).map_or(0, |s| s.lines().count()) < 2 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let waited = c
            .wait_until(Instant::now() + Duration::from_millis(100))
            .expect("wait");
        assert!(matches!(waited, Waited::Deadline(_)), "{waited:?}");
        let text = std::fs::read_to_string(&pids).expect("pids");
        let children: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        assert_eq!(children.len(), 2, "{text}");
        assert!(!alive(leader));
        for pid in children {
            assert!(wait_gone(pid), "sleep {pid} outlived its group");
        }
    }

    #[test]
    fn background_children_of_an_exited_leader_are_killed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 1000 & echo $! > {}", pid_file.display());
        let mut c =
            GroupChild::spawn(Command::new("sh").args(["-c", &script]).stdout(Stdio::null())).expect("spawn");
        let waited = c
            .wait_until(Instant::now() + Duration::from_secs(10))
            .expect("wait");
        let Waited::Exited(status) = waited else {
            panic!("{waited:?}")
        };
        assert!(status.success());
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        assert!(wait_gone(pid), "sleep {pid} outlived its leader");
        // Signalling after the end is a no-op, not an error.
        assert!(c.signal(Signal::TERM).is_ok());
    }

    #[test]
    fn dropping_kills_the_group() {
        let c = GroupChild::spawn(Command::new("sleep").arg("1000")).expect("spawn");
        let pid = c.id();
        drop(c);
        assert!(wait_gone(pid));
    }
}
