//! Server-side apply with a remembered fallback: API servers that do not implement apply
//! patches answer 415 Unsupported Media Type, and after the first such answer a controller
//! should go straight to its fallback write (a merge patch guarded by resourceVersion) instead
//! of asking again on every pass. Owns only that decision; callers own both writes.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
};

/// Whether the API server still looks like it supports server-side apply.
#[derive(Debug)]
pub struct ServerSideApply {
    supported: AtomicBool,
}

impl Default for ServerSideApply {
    fn default() -> Self {
        Self {
            supported: AtomicBool::new(true),
        }
    }
}

impl ServerSideApply {
    /// Runs `apply` unless the server already refused apply patches. Returns `Ok(Some(_))` when
    /// it applied, `Ok(None)` when the caller must fall back (the server answered 415 now or
    /// earlier), and any other error as it came.
    ///
    /// # Errors
    ///
    /// Every error of `apply` except a 415.
    pub async fn try_apply<T>(
        &self,
        apply: impl Future<Output = kube::Result<T>>,
    ) -> kube::Result<Option<T>> {
        if !self.supported.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match apply.await {
            Ok(applied) => Ok(Some(applied)),
            Err(kube::Error::Api(status)) if status.code == 415 => {
                // Expected on an API server without apply (the embedded one today); nothing
                // for an operator to act on.
                tracing::debug!(
                    "the API server does not support server-side apply; using merge patches"
                );
                self.supported.store(false, Ordering::Relaxed);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether apply patches are still tried.
    pub fn supported(&self) -> bool {
        self.supported.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use kube::core::Status;

    use super::*;

    fn answer(code: u16) -> kube::Result<u32> {
        Err(kube::Error::Api(
            Status::failure("no", "Failure").with_code(code).boxed(),
        ))
    }

    #[tokio::test]
    async fn a_415_is_remembered_and_other_errors_pass_through() {
        let ssa = ServerSideApply::default();
        let calls = AtomicUsize::new(0);
        let call = |result: kube::Result<u32>| {
            calls.fetch_add(1, Ordering::Relaxed);
            async move { result }
        };
        assert_eq!(ssa.try_apply(call(Ok(7))).await.ok().flatten(), Some(7));
        assert!(
            ssa.try_apply(call(answer(409))).await.is_err(),
            "a conflict is an error"
        );
        assert!(ssa.supported());
        assert_eq!(ssa.try_apply(call(answer(415))).await.ok(), Some(None));
        assert!(!ssa.supported());
        // Once refused, apply is not tried again: the request is never sent (polled).
        let sent = AtomicUsize::new(0);
        let request = async {
            sent.fetch_add(1, Ordering::Relaxed);
            Ok(1)
        };
        assert_eq!(ssa.try_apply(request).await.ok(), Some(None));
        assert_eq!(sent.load(Ordering::Relaxed), 0);
    }
}
