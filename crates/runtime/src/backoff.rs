//! Per-object exponential backoff for kube-runtime error policies, which have none built in
//! (kube-rs issue 1916): each object waits longer after each consecutive failure, and starts
//! over after a success. Owns only the failure counts; it never decides what failed.

use std::{borrow::Borrow, collections::HashMap, hash::Hash, sync::Mutex, time::Duration};

/// Failure counts per object key (such as an `ObjectRef`), and the delays they give.
#[derive(Debug)]
pub struct Backoff<Key = String> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<Key, u32>>,
}

impl<Key: Eq + Hash + Clone> Backoff<Key> {
    /// Waits `base` after a first failure, doubling per further failure, never more than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::default(),
        }
    }

    /// Records one more failure of `key` and returns how long to wait before retrying it.
    pub fn failed<Q>(&self, key: &Q) -> Duration
    where
        Key: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = Key> + ?Sized,
    {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_owned()).or_default();
        *n = n.saturating_add(1);
        let factor = 1u32 << (*n - 1).min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// Forgets `key`'s failures, after a success or when the object is gone.
    pub fn reset<Q>(&self, key: &Q)
    where
        Key: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets the failures of every key `keep` rejects, so objects that no longer exist do not
    /// hold memory.
    pub fn retain(&self, keep: impl Fn(&Key) -> bool) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|key, _| keep(key));
    }

    /// How many consecutive failures `key` has had.
    pub fn failures<Q>(&self, key: &Q) -> u32
    where
        Key: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_per_failure_up_to_the_cap_and_reset_on_success() {
        let backoff: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        let delays: Vec<Duration> = (0..6).map(|_| backoff.failed("ns/a")).collect();
        let millis: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [500, 1000, 2000, 4000, 5000, 5000]);
        // Another object is counted on its own.
        assert_eq!(backoff.failed("ns/b"), Duration::from_millis(500));
        backoff.reset("ns/a");
        assert_eq!(backoff.failures("ns/a"), 0);
        assert_eq!(backoff.failed("ns/a"), Duration::from_millis(500));
    }

    #[test]
    fn many_failures_never_overflow() {
        let backoff: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
        for _ in 0..100 {
            assert!(backoff.failed("x") <= Duration::from_secs(300));
        }
        assert_eq!(backoff.failures("x"), 100);
    }

    #[test]
    fn retain_drops_keys_of_objects_that_are_gone() {
        let backoff: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        backoff.failed("kept");
        backoff.failed("gone");
        backoff.retain(|key| key == "kept");
        assert_eq!((backoff.failures("kept"), backoff.failures("gone")), (1, 0));
    }
}
