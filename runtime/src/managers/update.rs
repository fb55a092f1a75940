//! The retry loop of a versioned update (`update_with`): read with a version, compute here,
//! write only if the version is unchanged; on a lost race back off and try again, a bounded
//! number of times.

use super::ManagerError;
use std::time::Duration;

/// How many times an update is tried before it gives up with [`ManagerError::Contended`].
pub(crate) const MAX_ATTEMPTS: u32 = 100;

/// Runs `attempt` until it returns `Some` (its write won), at most [`MAX_ATTEMPTS`] times,
/// sleeping a random, growing pause after each lost race so that contenders spread out.
pub(crate) fn retry_update<T>(
    mut attempt: impl FnMut() -> Result<Option<T>, ManagerError>,
) -> Result<T, ManagerError> {
    for attempts in 1..=MAX_ATTEMPTS {
        if let Some(done) = attempt()? {
            return Ok(done);
        }
        let ceiling = 1u64 << attempts.min(10);
        let micros = crate::sys::random_u64() % ceiling;
        std::thread::sleep(Duration::from_micros(micros));
    }
    Err(ManagerError::Contended {
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_that_always_loses_gives_up_contended() {
        let mut tries = 0;
        let result: Result<(), _> = retry_update(|| {
            tries += 1;
            Ok(None)
        });
        assert!(matches!(
            result,
            Err(ManagerError::Contended {
                attempts: MAX_ATTEMPTS
            })
        ));
        assert_eq!(tries, MAX_ATTEMPTS);
    }

    #[test]
    fn an_update_that_wins_late_returns_its_value() {
        let mut tries = 0;
        let result = retry_update(|| {
            tries += 1;
            Ok((tries == 3).then_some(tries))
        });
        assert_eq!(result.unwrap(), 3);
    }
}
