//! The order a fleet's targets run in: the canaries first, one at a time (a failed canary
//! stops the fleet), then the rest, at most `max_parallel` at once. After a failure,
//! `on_error = "stop"` starts no other target (those running finish) and `continue` runs them
//! all. Ctrl-C starts nothing more either. Targets are futures polled together on the
//! command's task: the pipeline's database sessions and child processes are asynchronous, so
//! they overlap without threads, and a target's run may borrow the command's settings.

use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::config::OnError;

/// How a fleet runs.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Targets at once (at least 1).
    pub max_parallel: usize,
    /// Targets run first, one at a time.
    pub canary: usize,
    /// What a failure does to the rest.
    pub on_error: OnError,
}

/// Runs `work` on each item as the policy says; `done` sees each result as it comes (to print
/// a line per target). Returns the results in the items' order; `None`: not started.
pub async fn run<'a, T, R, Fut>(
    items: &'a [T],
    policy: Policy,
    mut work: impl FnMut(&'a T) -> Fut,
    failed: impl Fn(&R) -> bool,
    mut done: impl FnMut(&'a T, &R),
) -> Vec<Option<R>>
where
    Fut: Future<Output = R>,
{
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let canaries = policy.canary.min(items.len());
    let mut stop = false;
    for (i, item) in items.iter().enumerate().take(canaries) {
        if crate::interrupt::requested() {
            return results;
        }
        let r = work(item).await;
        done(item, &r);
        let bad = failed(&r);
        results[i] = Some(r);
        if bad {
            // A failed canary stops the fleet, whatever `on_error` says.
            return results;
        }
    }
    let mut queue = items.iter().enumerate().skip(canaries);
    let mut running = FuturesUnordered::new();
    loop {
        while !stop && running.len() < policy.max_parallel.max(1) {
            if crate::interrupt::requested() {
                stop = true;
                break;
            }
            let Some((i, item)) = queue.next() else { break };
            let fut = work(item);
            running.push(async move { (i, fut.await) });
        }
        let Some((i, r)) = running.next().await else {
            break;
        };
        done(&items[i], &r);
        if failed(&r) && policy.on_error == OnError::Stop {
            stop = true;
        }
        results[i] = Some(r);
    }
    results
}

/// Runs `work` on every item, at most `max_parallel` at once, in the items' order: reads that
/// change nothing (plans, status), so nothing stops them.
pub async fn all<'a, T, R, Fut>(
    items: &'a [T],
    max_parallel: usize,
    work: impl FnMut(&'a T) -> Fut,
) -> Vec<R>
where
    Fut: Future<Output = R>,
{
    futures_util::stream::iter(items)
        .map(work)
        .buffered(max_parallel.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::*;

    fn policy(max_parallel: usize, canary: usize, on_error: OnError) -> Policy {
        Policy {
            max_parallel,
            canary,
            on_error,
        }
    }

    /// Runs the items (`true`: fails) and returns what ran, the results and the peak
    /// concurrency.
    fn simulate(items: &[bool], p: Policy) -> (Vec<Option<bool>>, usize, Vec<usize>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let now = Cell::new(0usize);
        let peak = Cell::new(0usize);
        let order = std::cell::RefCell::new(Vec::new());
        let indexed: Vec<(usize, bool)> = items.iter().copied().enumerate().collect();
        let results = rt.block_on(run(
            &indexed,
            p,
            |&(i, fails)| {
                let (now, peak, order) = (&now, &peak, &order);
                async move {
                    now.set(now.get() + 1);
                    peak.set(peak.get().max(now.get()));
                    order.borrow_mut().push(i);
                    tokio::time::sleep(Duration::from_millis(5 + (i as u64 % 3))).await;
                    now.set(now.get() - 1);
                    fails
                }
            },
            |r| *r,
            |_, _| {},
        ));
        (results, peak.get(), order.into_inner())
    }

    #[test]
    fn never_more_than_max_parallel() {
        let (results, peak, _) = simulate(&[false; 10], policy(3, 0, OnError::Stop));
        assert_eq!(peak, 3);
        assert!(results.iter().all(|r| *r == Some(false)));
    }

    #[test]
    fn canaries_run_alone_and_first() {
        let (_, _, order) = simulate(&[false; 6], policy(4, 2, OnError::Stop));
        assert_eq!(&order[..2], &[0, 1]);
        let (results, peak, _) = simulate(&[false, false], policy(4, 2, OnError::Stop));
        assert_eq!(peak, 1);
        assert_eq!(results, vec![Some(false), Some(false)]);
    }

    #[test]
    fn a_failed_canary_stops_everything() {
        let (results, _, _) = simulate(&[true, false, false], policy(4, 1, OnError::Continue));
        assert_eq!(results, vec![Some(true), None, None]);
    }

    #[test]
    fn stop_starts_nothing_after_a_failure() {
        let (results, _, _) = simulate(
            &[false, true, false, false, false],
            policy(1, 0, OnError::Stop),
        );
        assert_eq!(results, vec![Some(false), Some(true), None, None, None]);
    }

    #[test]
    fn continue_runs_them_all() {
        let (results, _, _) =
            simulate(&[false, true, false, true], policy(2, 0, OnError::Continue));
        assert_eq!(
            results,
            vec![Some(false), Some(true), Some(false), Some(true)]
        );
    }
}
