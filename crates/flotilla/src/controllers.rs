//! The hub's controllers, registered in one table so they can be switched on and off by name
//! (`--controllers=*,-scheduler`, as Karmada's controller-manager does).

use anyhow::{Context, bail};
use futures::{FutureExt, future::BoxFuture};
use kube::Client;

/// One controller the hub can run.
pub struct Controller {
    /// The name used in `--controllers`.
    pub name: &'static str,
    /// Runs the controller until it fails or the process stops.
    pub run: fn(Client) -> BoxFuture<'static, anyhow::Result<()>>,
}

/// Every controller the hub runs, in start order.
pub const ALL: &[Controller] = &[
    Controller {
        name: "cluster-status",
        run: |client| {
            async move {
                flotilla_controllers::cluster_status::run(client, Default::default())
                    .await
                    .context("cluster-status")
            }
            .boxed()
        },
    },
    Controller {
        name: "cluster",
        run: |client| {
            async move {
                flotilla_controllers::cluster::run(client, Default::default())
                    .await
                    .context("cluster")
            }
            .boxed()
        },
    },
    Controller {
        name: "scheduler",
        run: |client| {
            async move {
                flotilla_scheduler::controller::run(client, Default::default())
                    .await
                    .context("scheduler")
            }
            .boxed()
        },
    },
];

/// Resolves a `--controllers` list: `*` is every controller, `name` adds one, `-name` removes
/// one. Order in the result follows [`ALL`].
///
/// # Errors
///
/// When the list names a controller that does not exist.
pub fn select(list: &str) -> anyhow::Result<Vec<&'static Controller>> {
    let mut enabled: Vec<&'static str> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (remove, name) = match item.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, item),
        };
        if name == "*" {
            if remove {
                bail!("-* is not a controller list; name the controllers to run instead");
            }
            enabled.extend(ALL.iter().map(|c| c.name));
            continue;
        }
        let Some(controller) = ALL.iter().find(|c| c.name == name) else {
            let known: Vec<&str> = ALL.iter().map(|c| c.name).collect();
            bail!("unknown controller {name:?}; known controllers are {known:?}");
        };
        if remove {
            enabled.retain(|n| *n != controller.name);
        } else {
            enabled.push(controller.name);
        }
    }
    Ok(ALL.iter().filter(|c| enabled.contains(&c.name)).collect())
}

/// Runs the selected controllers until one of them fails.
///
/// # Errors
///
/// The first controller error.
pub async fn run(client: Client, controllers: &[&'static Controller]) -> anyhow::Result<()> {
    if controllers.is_empty() {
        return futures::future::pending().await;
    }
    let tasks = controllers.iter().map(|c| {
        tracing::info!(controller = c.name, "Starting controller");
        (c.run)(client.clone())
    });
    let (result, _, _) = futures::future::select_all(tasks).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<&'static str> {
        select(list)
            .expect("valid list")
            .iter()
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn controller_lists() {
        assert_eq!(names("*"), ["cluster-status", "cluster", "scheduler"]);
        assert_eq!(names("*,-scheduler"), ["cluster-status", "cluster"]);
        // Names match whole: removing `cluster` keeps `cluster-status`.
        assert_eq!(names("*,-cluster"), ["cluster-status", "scheduler"]);
        assert_eq!(
            names("scheduler,cluster,cluster-status"),
            ["cluster-status", "cluster", "scheduler"]
        );
        assert_eq!(names("scheduler"), ["scheduler"]);
        assert_eq!(names(""), Vec::<&str>::new());
        assert!(select("*,-nope").is_err());
        assert!(select("-*").is_err());
    }
}
