//! The crate's one error type, with variants named for the action that failed. Owns only error
//! shapes and their messages.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the controller platform.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A controller asked for a cache, or subscribed to one, after the caches had started.
    #[error(
        "the cache of {kind} was asked for after the caches started; controllers subscribe while they are built"
    )]
    CachesStarted {
        /// The kind.
        kind: String,
    },

    /// A client for a member cluster could not be built from its Cluster and Secret. The
    /// message says what is wrong and how to fix it, and never holds a credential.
    #[error("{0}")]
    MemberClient(String),

    /// Reading the leader-election Lease failed.
    #[error("failed to read Lease {lease}: {source}")]
    ReadLease {
        /// `namespace/name`.
        lease: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating or updating the leader-election Lease failed.
    #[error("failed to write Lease {lease}: {source}")]
    WriteLease {
        /// `namespace/name`.
        lease: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Creating the namespace of the leader-election Lease failed.
    #[error("failed to create namespace {namespace}: {source}")]
    CreateNamespace {
        /// The namespace.
        namespace: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The metrics and health endpoint could not listen on its address.
    #[error("cannot serve metrics and health on {address}: {source}")]
    ServeMetrics {
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// An error and its sources as one line (`a: b: c`), skipping a source whose text the line
/// already contains. For condition messages and logs.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = inner.source();
    }
    line
}

/// Whether a client error is a 404 Not Found: the object (or its kind) does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether a client error is a 409 Conflict: the object changed since it was read.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Whether kube-runtime's finalizer helper lost a race: its JSON patch `test`s the finalizers it
/// read, and an API server answers 422 when another writer changed them meanwhile. Retried
/// like a conflict.
pub fn is_finalizer_race(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 || status.code == 422)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut error: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            error = Some(Box::new(Layer {
                text,
                source: error,
            }));
        }
        *error.unwrap_or_else(|| {
            Box::new(Layer {
                text: "",
                source: None,
            })
        })
    }

    #[test]
    fn chains_join_sources_without_repeating_them() {
        let table: &[(&[&'static str], &str)] = &[
            (&["a"], "a"),
            (
                &["connect failed", "connection refused"],
                "connect failed: connection refused",
            ),
            (
                &["client error (Connect)", "Connect", "refused"],
                "client error (Connect): refused",
            ),
        ];
        for (texts, want) in table {
            assert_eq!(chain(&layers(texts)), *want);
        }
    }

    #[test]
    fn a_failed_finalizer_test_is_a_race_and_other_refusals_are_not() {
        let api = |code: u16| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        for (code, race, conflict) in [
            (409, true, true),
            (422, true, false),
            (404, false, false),
            (403, false, false),
            (500, false, false),
        ] {
            assert_eq!(is_finalizer_race(&api(code)), race, "{code}");
            assert_eq!(is_conflict(&api(code)), conflict, "{code}");
        }
    }
}
