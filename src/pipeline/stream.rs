//! Ordered streaming: revision files are read a few at a time, cut into
//! chunks, mapped on the rayon pool in batches, and handed to one consumer
//! in input order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use anyhow::{anyhow, Result};
use crossbeam_channel::{bounded, Receiver};
use rayon::prelude::*;

use crate::progress::Bar;
use crate::source::{self, Arrivals, Chunk, RevisionFile};

/// A stage stopped because another one failed first: the other error is the
/// one to report.
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped because another stage failed")
    }
}

impl std::error::Error for Stopped {}

/// Keeps the error that caused the others.
pub fn first_error(a: Result<()>, b: Result<()>) -> Result<()> {
    match (a, b) {
        (Err(a), Err(b)) if a.is::<Stopped>() => Err(b),
        (Err(a), _) => Err(a),
        (Ok(()), b) => b,
    }
}

/// How to read the files of one pass.
pub struct Reading<'a> {
    pub files: &'a [RevisionFile],
    pub chunk_size: usize,
    /// Parse threads: files read at once and chunks per batch follow it.
    pub jobs: usize,
    /// Chunks each file's reader keeps ready.
    pub chunks_ahead: usize,
    pub arrivals: &'a Arrivals,
    /// Bytes read so far, shown on `bar`.
    pub read: &'a AtomicU64,
    pub bar: &'a Bar,
}

/// Reads the files in order (up to `2 × jobs` at once, see
/// [`source::for_each_chunk_in_order`]), maps chunks with `parse` on the
/// pool (batches keep input order), and hands results to `consume` on a
/// thread of its own, in order.
pub fn stream_chunks<T, P, C>(
    reading: Reading<'_>,
    pool: &rayon::ThreadPool,
    parse: P,
    mut consume: C,
) -> Result<()>
where
    T: Send,
    P: Fn(Chunk) -> T + Sync,
    C: FnMut(T) -> Result<()> + Send,
{
    let Reading {
        files,
        chunk_size,
        jobs,
        chunks_ahead,
        arrivals,
        read,
        bar,
    } = reading;
    let batch = jobs.max(1) * 2;
    thread::scope(|s| {
        let (chunk_tx, chunk_rx) = bounded::<Chunk>(batch * 2);
        let reader = s.spawn(move || -> Result<()> {
            source::for_each_chunk_in_order(
                files,
                jobs * 2,
                chunks_ahead,
                chunk_size,
                arrivals,
                read,
                |c| chunk_tx.send(c).map_err(|_| anyhow!(Stopped)),
            )
        });
        let (out_tx, out_rx) = bounded::<Vec<T>>(1);
        let consumer = s.spawn(move || -> Result<()> {
            for results in out_rx {
                // Ctrl-C: the stages upstream stop as this one hangs up.
                crate::interrupt::check()?;
                for r in results {
                    consume(r)?;
                }
            }
            Ok(())
        });
        let parsing = (|| -> Result<()> {
            while let Some(chunks) = next_batch(&chunk_rx, batch) {
                let results: Vec<T> = pool.install(|| chunks.into_par_iter().map(&parse).collect());
                bar.set(read.load(Ordering::Relaxed));
                out_tx.send(results).map_err(|_| anyhow!(Stopped))?;
            }
            Ok(())
        })();
        drop(out_tx);
        drop(chunk_rx);
        let consumed = consumer
            .join()
            .map_err(|_| anyhow!("the row writer panicked"))?;
        let reading = reader
            .join()
            .map_err(|_| anyhow!("the file reader panicked"))?;
        bar.set(read.load(Ordering::Relaxed));
        first_error(first_error(consumed, reading), parsing)
    })
}

/// Up to `n` chunks: waits for the first, takes what is ready up to `n`.
fn next_batch(rx: &Receiver<Chunk>, n: usize) -> Option<Vec<Chunk>> {
    let first = rx.recv().ok()?;
    let mut out = vec![first];
    while out.len() < n {
        match rx.recv() {
            Ok(c) => out.push(c),
            Err(_) => break,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_that_caused_the_others_is_kept() {
        let stopped = || Err(anyhow!(Stopped));
        let real = || Err(anyhow!("disk full"));
        assert_eq!(
            first_error(stopped(), real()).unwrap_err().to_string(),
            "disk full"
        );
        assert_eq!(
            first_error(real(), stopped()).unwrap_err().to_string(),
            "disk full"
        );
        assert!(first_error(Ok(()), stopped()).unwrap_err().is::<Stopped>());
        assert!(first_error(Ok(()), Ok(())).is_ok());
    }
}
