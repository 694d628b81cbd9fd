//! Applies, observes and prunes a Work's manifests against one member cluster's
//! `kube::Client`, with no knowledge of the hub: the hub's execution controller runs it for
//! Push clusters and the pull-mode agent will run the same code inside a member.
//!
//! - [`prepare`]: pure rules — the body applied for a manifest (Flotilla's marks, the fields
//!   the member decides left out), whether a live object is already up to date, who manages a
//!   member object, the apply order (CRDs, then Namespaces, then the rest).
//! - [`member`]: the requests — server-side apply under the field manager `flotilla` (forced,
//!   the namespace created when missing), read, delete and release, each failure classified
//!   into a reason a user can act on.
//! - [`kinds`]: discovery of a kind's resource and scope, remembered per kind (shared with the
//!   hub's controllers, which read templates the same way).

pub mod kinds;
pub mod member;
pub mod prepare;

pub use member::{Applied, ApplyError, Deleted, Member, Outcome};
pub use prepare::{FIELD_MANAGER, WorkRef};
