//! The password threads: a fixed pool of dedicated threads that run the memory-hard checks, so they
//! never stall the async workers, never run more than the configured number at once, and never
//! queue more than the configured number behind them. The threads run at a lower CPU priority than
//! the request workers: a flood of password guesses slows other password checks, not the requests
//! that carry tokens or cached credentials.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::PasswordError;

/// How much lower than the request workers the password threads run (Linux `nice`: 0 is normal, 19
/// the lowest). At +10 a busy password thread gets about a tenth of a CPU that a request worker
/// wants, and all of it when the workers are idle.
const PASSWORD_THREAD_NICE: i32 = 10;

/// A unit of work for a password thread; it reports its own result.
type Job = Box<dyn FnOnce() + Send>;

/// The password threads and their queue. Admission is counted here, so the queue itself can be an
/// unbounded channel: no more than `threads + max_waiting` jobs are ever in it or running.
pub(super) struct Pool {
    jobs: mpsc::Sender<Job>,
    capacity: usize,
    admitted: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
}

impl Pool {
    /// Work waiting for a thread now.
    pub(super) fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Starts `threads` (at least one) password threads; they stop when the pool is dropped.
    pub(super) fn start(threads: usize, max_waiting: usize) -> Result<Pool, PasswordError> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name(format!("password-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let next = receiver.lock().expect("password queue lock").recv();
                        let Ok(job) = next else { return };
                        queued.fetch_sub(1, Ordering::SeqCst);
                        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a password check panicked; its request got 503");
                        }
                    }
                })
                .map_err(|e| PasswordError::Hash(format!("cannot start a password thread: {e}")))?;
        }
        Ok(Pool {
            jobs: sender,
            capacity: threads + max_waiting,
            admitted: Arc::new(AtomicUsize::new(0)),
            queued,
        })
    }

    /// Runs `work` on a password thread; refuses at once when every thread is busy and the queue is
    /// full. Work whose caller has gone away (the client hung up) by the time a thread is free is
    /// skipped; work that panics answers [`PasswordError::Unfinished`] and the thread goes on.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let admission = Admission::enter(&self.admitted, self.capacity)?;
        let (reply, result) = oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move || {
            let _admission = admission;
            if !reply.is_closed() {
                let _ = reply.send(span.in_scope(work));
            }
        });
        self.queued.fetch_add(1, Ordering::SeqCst);
        let sent = self.jobs.send(job);
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(PasswordError::PoolClosed);
        }
        result.await.map_err(|_| PasswordError::Unfinished)
    }
}

/// One admitted job; leaving (finished, skipped or never sent) frees its place.
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn enter(admitted: &Arc<AtomicUsize>, capacity: usize) -> Result<Admission, PasswordError> {
        admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < capacity).then_some(n + 1)
            })
            .map_err(|_| PasswordError::Overloaded)?;
        Ok(Admission(Arc::clone(admitted)))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lowers the calling thread's CPU priority by [`PASSWORD_THREAD_NICE`]. On Linux `setpriority` with
/// `who = 0` applies to the calling thread alone (elsewhere it would lower the whole process, so it
/// is not called). Failing to lower it only costs fairness.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours.
        let status = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, PASSWORD_THREAD_NICE) };
        if status != 0 {
            tracing::debug!("could not lower the password thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn password_threads_run_below_the_request_workers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pool = Pool::start(2, 0).unwrap();
        let nice = runtime
            .block_on(pool.run(|| {
                // SAFETY: getpriority takes plain integers.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
            }))
            .unwrap();
        // SAFETY: as above.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(nice, (own + PASSWORD_THREAD_NICE).min(19));
    }
}
