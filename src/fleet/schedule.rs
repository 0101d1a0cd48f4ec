//! The order a fleet's targets run in: phases one after another (the canaries, one at a
//! time, a failed canary stopping the fleet; then each wave), and inside a phase as many
//! targets at once as the limits allow: `max_parallel` in all, `max_parallel_per_server` per
//! server, and one per lock domain (targets that share a deploy lock would only wait for each
//! other's lock, holding a connection meanwhile). A target that does not fit now is passed
//! over for the next one that does, so one busy server does not hold up the others. After a
//! failure, `on_error = "stop"` starts no other target (those running finish) and `continue`
//! runs them all. Ctrl-C starts nothing more either. Targets are futures polled together on
//! the command's task: the pipeline's database sessions and child processes are
//! asynchronous, so they overlap without threads, and a target's run may borrow the
//! command's settings.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::config::OnError;

/// How a fleet runs.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Targets at once (at least 1).
    pub max_parallel: usize,
    /// Targets at once on one server; `None`: only `max_parallel` limits them.
    pub per_server: Option<usize>,
    /// What a failure does to the rest.
    pub on_error: OnError,
}

/// What a target holds while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// Its server (`host:port`); `None` for SQLite.
    pub server: Option<String>,
    /// The lock domain it shares with other targets; `None` when its lock is its own.
    pub domain: Option<String>,
}

/// Items run together, after the phases before them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Phase {
    /// Indexes into the items.
    pub items: Vec<usize>,
    /// Canaries run one at a time, and one failing stops the fleet whatever `on_error` says.
    pub canary: bool,
}

/// The places taken by what runs now.
struct Slots<'c> {
    claims: &'c [Claim],
    max_parallel: usize,
    per_server: Option<usize>,
    /// Whether lock domains are held (not for reads, which take no lock).
    domains: bool,
    running: usize,
    servers: HashMap<&'c str, usize>,
    held: HashSet<&'c str>,
}

impl<'c> Slots<'c> {
    fn new(
        claims: &'c [Claim],
        max_parallel: usize,
        per_server: Option<usize>,
        domains: bool,
    ) -> Self {
        Self {
            claims,
            max_parallel: max_parallel.max(1),
            per_server,
            domains,
            running: 0,
            servers: HashMap::new(),
            held: HashSet::new(),
        }
    }

    fn full(&self) -> bool {
        self.running >= self.max_parallel
    }

    fn fits(&self, i: usize) -> bool {
        let Some(c) = self.claims.get(i) else {
            return !self.full();
        };
        if self.full() {
            return false;
        }
        if let (Some(limit), Some(server)) = (self.per_server, c.server.as_deref())
            && self.servers.get(server).copied().unwrap_or(0) >= limit.max(1)
        {
            return false;
        }
        match (self.domains, c.domain.as_deref()) {
            (true, Some(d)) => !self.held.contains(d),
            _ => true,
        }
    }

    fn take(&mut self, i: usize) {
        self.running += 1;
        if let Some(c) = self.claims.get(i) {
            if let Some(s) = c.server.as_deref() {
                *self.servers.entry(s).or_default() += 1;
            }
            if let (true, Some(d)) = (self.domains, c.domain.as_deref()) {
                self.held.insert(d);
            }
        }
    }

    fn give(&mut self, i: usize) {
        self.running -= 1;
        if let Some(c) = self.claims.get(i) {
            if let Some(n) = c.server.as_deref().and_then(|s| self.servers.get_mut(s)) {
                *n -= 1;
            }
            if let Some(d) = c.domain.as_deref() {
                self.held.remove(d);
            }
        }
    }

    /// The first waiting item that fits now, taken out of `waiting`.
    fn next(&mut self, waiting: &mut Vec<usize>) -> Option<usize> {
        let at = waiting.iter().position(|&i| self.fits(i))?;
        let i = waiting.remove(at);
        self.take(i);
        Some(i)
    }
}

/// Runs `work` on the items of each phase as the policy says; `done` sees each result as it
/// comes (to print a line per target). `claims[i]` is what item `i` holds while it runs.
/// Returns the results in the items' order; `None`: not started.
#[allow(clippy::too_many_arguments)]
pub async fn run<'a, T, R, Fut>(
    items: &'a [T],
    claims: &[Claim],
    phases: &[Phase],
    policy: Policy,
    mut work: impl FnMut(&'a T) -> Fut,
    failed: impl Fn(&R) -> bool,
    mut done: impl FnMut(&'a T, &R),
) -> Vec<Option<R>>
where
    Fut: Future<Output = R>,
{
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let mut stop = false;
    for phase in phases {
        if stop {
            break;
        }
        let max = if phase.canary { 1 } else { policy.max_parallel };
        let mut slots = Slots::new(claims, max, policy.per_server, true);
        let mut waiting: Vec<usize> = phase.items.clone();
        let mut running = FuturesUnordered::new();
        loop {
            while !stop {
                if crate::interrupt::requested() {
                    stop = true;
                    break;
                }
                let Some(i) = slots.next(&mut waiting) else {
                    break;
                };
                let fut = work(&items[i]);
                running.push(async move { (i, fut.await) });
            }
            let Some((i, r)) = running.next().await else {
                break;
            };
            slots.give(i);
            done(&items[i], &r);
            if failed(&r) && (phase.canary || policy.on_error == OnError::Stop) {
                stop = true;
            }
            results[i] = Some(r);
        }
    }
    results
}

/// Runs `work` on every item, at most `max_parallel` at once and `per_server` on one server:
/// reads that change nothing and take no lock (identities, plans, status), so nothing stops
/// them. Returns the results in the items' order.
pub async fn all<'a, T, R, Fut>(
    items: &'a [T],
    claims: &[Claim],
    max_parallel: usize,
    per_server: Option<usize>,
    mut work: impl FnMut(&'a T) -> Fut,
) -> Vec<R>
where
    Fut: Future<Output = R>,
{
    let mut results: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let mut slots = Slots::new(claims, max_parallel, per_server, false);
    let mut waiting: Vec<usize> = (0..items.len()).collect();
    let mut running = FuturesUnordered::new();
    loop {
        while let Some(i) = slots.next(&mut waiting) {
            let fut = work(&items[i]);
            running.push(async move { (i, fut.await) });
        }
        let Some((i, r)) = running.next().await else {
            break;
        };
        slots.give(i);
        results[i] = Some(r);
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    use super::*;

    /// The first `canary` items one at a time, then the rest.
    fn canary_then_rest(n: usize, canary: usize) -> Vec<Phase> {
        let canary = canary.min(n);
        let mut phases = vec![Phase {
            items: (0..canary).collect(),
            canary: true,
        }];
        phases.push(Phase {
            items: (canary..n).collect(),
            canary: false,
        });
        phases
    }

    fn policy(max_parallel: usize, on_error: OnError) -> Policy {
        Policy {
            max_parallel,
            per_server: None,
            on_error,
        }
    }

    /// What a simulated fleet did: results, peak concurrency, start order, and the peak per
    /// server and per domain.
    struct Sim {
        results: Vec<Option<bool>>,
        peak: usize,
        order: Vec<usize>,
        server_peak: usize,
        domain_peak: usize,
    }

    /// Runs the items (`true`: fails) under `claims` and `phases`.
    fn simulate(items: &[bool], claims: &[Claim], phases: &[Phase], p: Policy) -> Sim {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let now = Cell::new(0usize);
        let peak = Cell::new(0usize);
        let on: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
        let server_peak = Cell::new(0usize);
        let domain_peak = Cell::new(0usize);
        let order = RefCell::new(Vec::new());
        let indexed: Vec<(usize, bool)> = items.iter().copied().enumerate().collect();
        let results = rt.block_on(run(
            &indexed,
            claims,
            phases,
            p,
            |&(i, fails)| {
                let (now, peak, order, on) = (&now, &peak, &order, &on);
                let (server_peak, domain_peak) = (&server_peak, &domain_peak);
                let c = claims.get(i).cloned().unwrap_or_default();
                async move {
                    now.set(now.get() + 1);
                    peak.set(peak.get().max(now.get()));
                    order.borrow_mut().push(i);
                    let keys = [
                        c.server.map(|s| format!("s:{s}")),
                        c.domain.map(|d| format!("d:{d}")),
                    ];
                    for k in keys.iter().flatten() {
                        let mut on = on.borrow_mut();
                        let n = on.entry(k.clone()).or_default();
                        *n += 1;
                        let p = if k.starts_with("s:") {
                            server_peak
                        } else {
                            domain_peak
                        };
                        p.set(p.get().max(*n));
                    }
                    tokio::time::sleep(Duration::from_millis(5 + (i as u64 % 3))).await;
                    for k in keys.iter().flatten() {
                        *on.borrow_mut().get_mut(k).unwrap() -= 1;
                    }
                    now.set(now.get() - 1);
                    fails
                }
            },
            |r| *r,
            |_, _| {},
        ));
        Sim {
            results,
            peak: peak.get(),
            order: order.into_inner(),
            server_peak: server_peak.get(),
            domain_peak: domain_peak.get(),
        }
    }

    fn plain(items: &[bool], canary: usize, p: Policy) -> Sim {
        simulate(items, &[], &canary_then_rest(items.len(), canary), p)
    }

    #[test]
    fn never_more_than_max_parallel() {
        let s = plain(&[false; 10], 0, policy(3, OnError::Stop));
        assert_eq!(s.peak, 3);
        assert!(s.results.iter().all(|r| *r == Some(false)));
    }

    #[test]
    fn canaries_run_alone_and_first() {
        let s = plain(&[false; 6], 2, policy(4, OnError::Stop));
        assert_eq!(&s.order[..2], &[0, 1]);
        let s = plain(&[false, false], 2, policy(4, OnError::Stop));
        assert_eq!(s.peak, 1);
        assert_eq!(s.results, vec![Some(false), Some(false)]);
    }

    #[test]
    fn a_failed_canary_stops_everything() {
        let s = plain(&[true, false, false], 1, policy(4, OnError::Continue));
        assert_eq!(s.results, vec![Some(true), None, None]);
    }

    #[test]
    fn stop_starts_nothing_after_a_failure() {
        let s = plain(
            &[false, true, false, false, false],
            0,
            policy(1, OnError::Stop),
        );
        assert_eq!(s.results, vec![Some(false), Some(true), None, None, None]);
    }

    #[test]
    fn continue_runs_them_all() {
        let s = plain(&[false, true, false, true], 0, policy(2, OnError::Continue));
        assert_eq!(
            s.results,
            vec![Some(false), Some(true), Some(false), Some(true)]
        );
    }

    fn on(server: &str, domain: Option<&str>) -> Claim {
        Claim {
            server: Some(server.into()),
            domain: domain.map(str::to_owned),
        }
    }

    #[test]
    fn per_server_limit_holds_and_other_servers_go_ahead() {
        // Six on server a, two on b: b's targets are not held up behind a's queue.
        let mut claims = vec![on("a", None); 6];
        claims.extend([on("b", None), on("b", None)]);
        let p = Policy {
            per_server: Some(2),
            ..policy(8, OnError::Stop)
        };
        let s = simulate(&[false; 8], &claims, &canary_then_rest(8, 0), p);
        assert_eq!(s.server_peak, 2);
        assert_eq!(s.peak, 4);
        assert!(
            s.order[..4].contains(&6) && s.order[..4].contains(&7),
            "{:?}",
            s.order
        );
        assert!(s.results.iter().all(Option::is_some));
    }

    #[test]
    fn one_target_per_lock_domain_at_once() {
        let claims = vec![
            on("a", Some("db1")),
            on("a", Some("db1")),
            on("a", Some("db1")),
            on("a", None),
        ];
        let s = simulate(
            &[false; 4],
            &claims,
            &canary_then_rest(4, 0),
            policy(4, OnError::Stop),
        );
        assert_eq!(s.domain_peak, 1);
        assert_eq!(s.peak, 2);
    }

    #[test]
    fn a_failed_wave_stops_the_later_waves_under_stop_only() {
        let phases = vec![
            Phase {
                items: vec![0, 1],
                canary: false,
            },
            Phase {
                items: vec![2, 3],
                canary: false,
            },
        ];
        let items = [false, true, false, false];
        let s = simulate(&items, &[], &phases, policy(4, OnError::Stop));
        assert_eq!(s.results, vec![Some(false), Some(true), None, None]);
        let s = simulate(&items, &[], &phases, policy(4, OnError::Continue));
        assert!(s.results.iter().all(Option::is_some));
        // A wave starts after the one before it has finished.
        let s = simulate(&[false; 4], &[], &phases, policy(4, OnError::Stop));
        assert_eq!(s.peak, 2);
    }

    #[test]
    fn reads_respect_the_server_limit_and_keep_their_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let claims = vec![on("a", Some("d")); 5];
        let now = Cell::new(0usize);
        let peak = Cell::new(0usize);
        let items: Vec<usize> = (0..5).collect();
        let out = rt.block_on(all(&items, &claims, 4, Some(2), |&i| {
            let (now, peak) = (&now, &peak);
            async move {
                now.set(now.get() + 1);
                peak.set(peak.get().max(now.get()));
                tokio::time::sleep(Duration::from_millis(5 - i as u64)).await;
                now.set(now.get() - 1);
                i * 10
            }
        }));
        assert_eq!(out, vec![0, 10, 20, 30, 40]);
        assert_eq!(peak.get(), 2);
    }
}
