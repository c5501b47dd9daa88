//! The answer a command gives, as the exit code scripts and schedulers read:
//! 0 the work was done and the answer is yes; 1 the answer is no (a failed check, a slow size,
//! a bad env, an impossible placement); 2 the work could not be done.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    No,
    Error,
}

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::No => 1,
            Outcome::Error => 2,
        }
    }

    /// `No` when `failed`, else `Ok`.
    pub fn from_failed(failed: bool) -> Outcome {
        if failed { Outcome::No } else { Outcome::Ok }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_ordering() {
        assert_eq!(
            [Outcome::Ok.code(), Outcome::No.code(), Outcome::Error.code()],
            [0, 1, 2]
        );
        assert_eq!(Outcome::Ok.max(Outcome::No), Outcome::No);
        assert_eq!(Outcome::from_failed(true), Outcome::No);
    }
}
