//! What the engine needs of a PostgreSQL connection: two calls of the
//! simple-query protocol, for the synchronous client (`postgres`) and the
//! asynchronous one (`tokio-postgres`) alike.
//!
//! The engine is written once, as `async` code over [`Connection`]. The
//! synchronous client's calls complete before their future is returned, so
//! the synchronous API drives the same code with a trivial executor and no
//! runtime.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{Error, SimpleQueryMessage};

/// A PostgreSQL connection the engine can run on.
///
/// Implemented for `postgres::Client` (feature `sync`) and for
/// `&tokio_postgres::Client` (feature `async`); a pool's connection that
/// dereferences to either can be passed as `&mut *conn` or `&*conn`.
pub trait Connection: Send {
    /// Runs one or more statements, discarding their rows.
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Runs one or more statements and returns every row and command tag,
    /// as text.
    fn simple_query(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + Send;

    /// Waits, between two attempts to take the migration lock.
    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()> + Send;
}

#[cfg(feature = "sync")]
impl Connection for postgres::Client {
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), Error>> + Send {
        std::future::ready(postgres::Client::batch_execute(self, sql))
    }

    fn simple_query(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + Send {
        std::future::ready(postgres::Client::simple_query(self, sql))
    }

    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()> + Send {
        std::thread::sleep(duration);
        std::future::ready(())
    }
}

#[cfg(feature = "async")]
impl Connection for &tokio_postgres::Client {
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), Error>> + Send {
        tokio_postgres::Client::batch_execute(self, sql)
    }

    fn simple_query(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + Send {
        tokio_postgres::Client::simple_query(self, sql)
    }

    fn pause(&mut self, duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }
}

/// Drives an engine future over a synchronous client, whose calls are
/// complete by the time their futures exist.
#[cfg(feature = "sync")]
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}
