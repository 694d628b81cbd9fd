//! The crate's one error type. Owns only error shapes and their messages; never decides
//! anything.

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the hub controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the hub API server failed.
    #[error("failed to {action}: {source}")]
    Kube {
        /// What was being done, such as `read Secret flotilla-cluster/member1`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// Watching a CRD for its Established condition failed.
    #[error("failed to wait for CRD {name}: {source}")]
    WaitCrd {
        /// The CRD name.
        name: String,
        /// The watch error.
        #[source]
        source: kube::runtime::wait::Error,
    },

    /// A CRD was not Established in time after it was installed.
    #[error(
        "CRD {name} was not Established within {seconds}s; check the API server's CRD controller"
    )]
    CrdNotEstablished {
        /// The CRD name.
        name: String,
        /// How long was waited.
        seconds: u64,
    },

    /// A client for a member cluster could not be built from its Cluster and Secret. The
    /// message says what is wrong and how to fix it; it becomes the `Ready` condition's message.
    #[error("{0}")]
    MemberClient(String),
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
}
