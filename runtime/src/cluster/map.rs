//! [`Map`]: the methods both pools share, so that generic code takes either (as joblib's
//! backends let the same code run on processes or on a Dask or Ray cluster).

use crate::error::Error;
use crate::pool::{AsyncResult, Callbacks};
use crate::task::{IntoCall, MapTask, TakesArgs, Task, TaskRef};

type Output<C> = <<C as IntoCall>::Task as Task>::Output;
type MapOutput<M> = <<M as MapTask>::Task as Task>::Output;

/// What a local [`Pool`](crate::Pool) and a cluster [`Pool`](super::Pool) both do, with the
/// same results: `map`, `starmap`, `apply`, their async forms, `close` and `join`.
///
/// # Examples
///
/// ```
/// use multiproc::cluster::Map;
/// use multiproc::prelude::*;
///
/// #[process_task]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// /// Runs on one machine or on a cluster alike.
/// fn total(pool: &impl Map) -> multiproc::Result<u64> {
///     Ok(pool.map(task!(square), 0..100)?.iter().sum())
/// }
///
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(total(&Pool::new(2)?)?, 328_350);
/// # Ok(())
/// # }
/// ```
pub trait Map {
    /// Python's `map`: see [`Pool::map`](crate::Pool::map).
    ///
    /// # Errors
    ///
    /// The first call's failure, in input order, once every chunk has finished.
    fn map<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
    ) -> Result<Vec<MapOutput<M>>, Error>;

    /// Python's `map_async(f, items, chunksize, callback, error_callback)`.
    fn map_async_with<M: MapTask, I: IntoIterator<Item = M::Item>>(
        &self,
        task: M,
        items: I,
        chunksize: Option<usize>,
        callbacks: Callbacks<Vec<MapOutput<M>>>,
    ) -> AsyncResult<Vec<MapOutput<M>>>;

    /// Python's `starmap`: see [`Pool::starmap`](crate::Pool::starmap).
    ///
    /// # Errors
    ///
    /// As [`map`](Map::map).
    fn starmap<T: TakesArgs<A>, A, I: IntoIterator<Item = A>>(
        &self,
        task: TaskRef<T>,
        items: I,
    ) -> Result<Vec<T::Output>, Error>;

    /// Python's `apply`: see [`Pool::apply`](crate::Pool::apply).
    ///
    /// # Errors
    ///
    /// The call's failure.
    fn apply<C: IntoCall>(&self, call: C) -> Result<Output<C>, Error>;

    /// Python's `apply_async(f, args, callback=, error_callback=)`.
    fn apply_async_with<C: IntoCall>(
        &self,
        call: C,
        callbacks: Callbacks<Output<C>>,
    ) -> AsyncResult<Output<C>>;

    /// Python's `close`.
    fn close(&self);

    /// Python's `join`.
    ///
    /// # Errors
    ///
    /// [`PoolError::Running`](crate::pool::PoolError::Running) unless closed or terminated.
    fn join(&self) -> Result<(), Error>;
}

/// Implements [`Map`] for a pool type by its inherent methods of the same names.
macro_rules! map_by_inherent_methods {
    ($pool:ty) => {
        impl Map for $pool {
            fn map<M: MapTask, I: IntoIterator<Item = M::Item>>(
                &self,
                task: M,
                items: I,
            ) -> Result<Vec<MapOutput<M>>, Error> {
                <$pool>::map(self, task, items)
            }

            fn map_async_with<M: MapTask, I: IntoIterator<Item = M::Item>>(
                &self,
                task: M,
                items: I,
                chunksize: Option<usize>,
                callbacks: Callbacks<Vec<MapOutput<M>>>,
            ) -> AsyncResult<Vec<MapOutput<M>>> {
                <$pool>::map_async_with(self, task, items, chunksize, callbacks)
            }

            fn starmap<T: TakesArgs<A>, A, I: IntoIterator<Item = A>>(
                &self,
                task: TaskRef<T>,
                items: I,
            ) -> Result<Vec<T::Output>, Error> {
                <$pool>::starmap(self, task, items)
            }

            fn apply<C: IntoCall>(&self, call: C) -> Result<Output<C>, Error> {
                <$pool>::apply(self, call)
            }

            fn apply_async_with<C: IntoCall>(
                &self,
                call: C,
                callbacks: Callbacks<Output<C>>,
            ) -> AsyncResult<Output<C>> {
                <$pool>::apply_async_with(self, call, callbacks)
            }

            fn close(&self) {
                <$pool>::close(self)
            }

            fn join(&self) -> Result<(), Error> {
                <$pool>::join(self)
            }
        }
    };
}

map_by_inherent_methods!(crate::Pool);
map_by_inherent_methods!(super::Pool);
