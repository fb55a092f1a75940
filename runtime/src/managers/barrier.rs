//! [`BarrierProxy`], Python's `manager.Barrier(parties)`: a barrier held by a manager, whose
//! waits the server parks and times out.

use super::client::{proxy_traits, Handle};
use super::protocol::{timeout_micros, Op};
use super::ManagerError;
use std::marker::PhantomData;
use std::time::Duration;

/// A barrier served by a [`Manager`](super::Manager) (Python's `manager.Barrier(parties)`),
/// with the crate's [`Barrier`](crate::Barrier)'s method names: each wait returns once
/// `parties` processes or threads wait. A wait that times out, or whose process dies, breaks the
/// barrier for everyone until [`reset`](BarrierProxy::reset), as in Python.
///
/// # Examples
///
/// ```
/// use multiproc::managers::{BarrierProxy, Manager};
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn meet(barrier: BarrierProxy) -> multiproc::Result<usize> {
///     Ok(barrier.wait()?)
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// let manager = Manager::start()?;
/// let barrier = manager.barrier(3)?;
/// let children: Vec<_> = (0..2)
///     .map(|_| Process::new(task!(meet, barrier.clone())).start())
///     .collect::<Result<_, _>>()?;
/// let mut indexes = vec![barrier.wait()?];
/// for child in children {
///     indexes.push(child.join()??);
/// }
/// indexes.sort();
/// assert_eq!(indexes, [0, 1, 2]);
/// # Ok(())
/// # }
/// ```
pub struct BarrierProxy {
    handle: Handle,
    /// No type: the field the proxies' common traits build with.
    types: PhantomData<()>,
}

proxy_traits!(BarrierProxy);

impl BarrierProxy {
    /// Waits for the other parties (Python's `barrier.wait()`); returns this party's arrival
    /// index, from 0 to `parties - 1`.
    ///
    /// # Errors
    ///
    /// [`ServerError::BrokenBarrier`](super::ServerError::BrokenBarrier) if the barrier is or
    /// becomes broken; otherwise the manager gone or shut down.
    pub fn wait(&self) -> Result<usize, ManagerError> {
        self.wait_within(None)
    }

    /// Waits at most `timeout` (Python's `barrier.wait(timeout)`); a timeout breaks the
    /// barrier, and this wait gets `BrokenBarrier`, as the others do.
    ///
    /// # Errors
    ///
    /// As [`wait`](BarrierProxy::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        self.wait_within(Some(timeout_micros(timeout)))
    }

    fn wait_within(&self, timeout_micros: Option<u64>) -> Result<usize, ManagerError> {
        Ok(self
            .handle
            .call::<u64>(&Op::BarrierWait { timeout_micros })? as usize)
    }

    /// Breaks the barrier (Python's `barrier.abort()`).
    ///
    /// # Errors
    ///
    /// The manager gone or shut down.
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::BarrierAbort)
    }

    /// Mends a broken barrier (Python's `barrier.reset()`); parties waiting get
    /// `BrokenBarrier`.
    ///
    /// # Errors
    ///
    /// As [`abort`](BarrierProxy::abort).
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.handle.call(&Op::BarrierReset)
    }

    /// How many parties it waits for (Python's `barrier.parties`).
    ///
    /// # Errors
    ///
    /// As [`abort`](BarrierProxy::abort).
    pub fn parties(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.0 as usize)
    }

    /// How many parties wait now (Python's `barrier.n_waiting`).
    ///
    /// # Errors
    ///
    /// As [`abort`](BarrierProxy::abort).
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.1 as usize)
    }

    /// Whether the barrier is broken (Python's `barrier.broken`).
    ///
    /// # Errors
    ///
    /// As [`abort`](BarrierProxy::abort).
    pub fn broken(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }

    fn state(&self) -> Result<(u64, u64, bool), ManagerError> {
        self.handle.call(&Op::BarrierState)
    }
}
