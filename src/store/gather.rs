//! Requests that arrive together, answered by one database statement. Recording a MUNGE
//! credential's use is one small write per request; a commit (SQLite) or a round trip (PostgreSQL)
//! costs far more than the row itself, so uses that arrive together are written by one statement.
//! The first to wait gathers: it yields to the other tasks on its worker while more arrive (no
//! timer; see [`MIN_GATHER_YIELDS`]), then takes every waiting item and answers each.

use std::mem;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::lock;

/// Yields the first waiting item makes before the batch is taken, however few items arrive.
/// Measured with 16 connections sending MUNGE credentials to one worker: after one yield no other
/// use had arrived (one use per commit, 133 µs of CPU per request); after the second, all 16 had
/// (~80 µs). Why the first is not enough is not established; the number is what was measured.
/// When no other task is ready, a yield costs a look at the sockets (an `epoll_wait` that does not
/// block).
const MIN_GATHER_YIELDS: usize = 2;
/// Yields at most, while every yield brings more items: what bounds the wait of the first.
const MAX_GATHER_YIELDS: usize = 8;

/// Items waiting for the statement that answers them.
pub struct Gathering<T, A> {
    waiting: Mutex<Vec<Waiting<T, A>>>,
}

/// An item waiting in a [`Gathering`], and where its answer goes.
pub struct Waiting<T, A> {
    pub item: T,
    answer: oneshot::Sender<A>,
}

impl<T, A> Waiting<T, A> {
    /// Sends the answer; a request dropped meanwhile no longer wants it.
    pub fn answer(self, answer: A) {
        let _ = self.answer.send(answer);
    }
}

/// What [`Gathering::join`] gives an item: where its answer arrives, and whether it is the first
/// waiting, which must [`gather`](Gathering::gather) and then answer the batch.
pub struct Joined<A> {
    pub answer: oneshot::Receiver<A>,
    pub first: bool,
}

impl<T, A> Default for Gathering<T, A> {
    fn default() -> Self {
        Gathering {
            waiting: Mutex::new(Vec::new()),
        }
    }
}

impl<T, A> Gathering<T, A> {
    /// Adds an item to the batch being gathered.
    pub fn join(&self, item: T) -> Joined<A> {
        let (answer, answered) = oneshot::channel();
        let mut waiting = lock(&self.waiting);
        waiting.push(Waiting { item, answer });
        Joined {
            answer: answered,
            first: waiting.len() == 1,
        }
    }

    /// Yields to the tasks ready on this worker while items keep arriving: at least
    /// [`MIN_GATHER_YIELDS`] times, at most [`MAX_GATHER_YIELDS`].
    pub async fn gather(&self) {
        let mut waiting = 1;
        for round in 1..=MAX_GATHER_YIELDS {
            tokio::task::yield_now().await;
            let now = lock(&self.waiting).len();
            if round >= MIN_GATHER_YIELDS && now == waiting {
                return;
            }
            waiting = now;
        }
    }

    /// Every waiting item; the next to join starts a new batch.
    pub fn take(&self) -> Vec<Waiting<T, A>> {
        mem::take(&mut *lock(&self.waiting))
    }
}

/// Answers each waiting item with its own result, in order, or every one with the statement's
/// error.
pub fn answer_each<T, R, E>(batch: Vec<Waiting<T, Result<R, Arc<E>>>>, results: Result<Vec<R>, E>) {
    match results {
        Ok(results) => {
            for (waiting, result) in batch.into_iter().zip(results) {
                waiting.answer(Ok(result));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for waiting in batch {
                waiting.answer(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;

    use super::*;

    #[tokio::test]
    async fn items_that_arrive_while_the_first_gathers_are_taken_together() {
        let gathering = Gathering::<u32, usize>::default();
        let batches = Mutex::new(Vec::new());
        let request = |n: u32| {
            let (gathering, batches) = (&gathering, &batches);
            async move {
                let joined = gathering.join(n);
                if joined.first {
                    gathering.gather().await;
                    let batch = gathering.take();
                    let size = batch.len();
                    batches.lock().unwrap().push(size);
                    batch.into_iter().for_each(|waiting| waiting.answer(size));
                }
                joined.answer.await.unwrap()
            }
        };
        let answers = join_all((0..5).map(request)).await;
        assert_eq!(answers, [5; 5]);
        assert_eq!(*batches.lock().unwrap(), [5]);
        assert_eq!(request(5).await, 1, "the next item starts a new batch");
    }

    #[tokio::test]
    async fn a_lone_item_is_taken_alone_and_the_next_starts_a_new_batch() {
        let gathering = Gathering::<(), ()>::default();
        assert!(gathering.join(()).first);
        gathering.gather().await;
        assert_eq!(gathering.take().len(), 1);
        assert!(gathering.join(()).first);
    }
}
