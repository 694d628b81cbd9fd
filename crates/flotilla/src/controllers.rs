//! The hub's controllers, registered in one table so they can be switched on and off by name
//! (`--controllers=*,-scheduler`, as Karmada's controller-manager does). Each entry builds its
//! controller from the one shared [`Context`]; [`run`] starts the shared caches once every
//! selected controller has subscribed, and returns when they have all stopped.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use flotilla_runtime::Context;
use futures::{FutureExt, future::BoxFuture};

/// Settings of the controllers, from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The cluster-status controller's settings.
    pub cluster_status: flotilla_controllers::cluster_status::Options,
    /// The cluster controller's settings.
    pub cluster: flotilla_controllers::cluster::Options,
    /// The scheduler's settings.
    pub scheduler: flotilla_scheduler::controller::Options,
    /// The binding controller's settings.
    pub binding: flotilla_controllers::binding::Options,
    /// The resource detector's settings.
    pub detector: flotilla_controllers::detector::Options,
    /// The dependencies distributor's settings.
    pub dependencies: flotilla_controllers::dependencies::Options,
    /// The execution controller's settings.
    pub execution: flotilla_controllers::execution::Options,
    /// The binding-status controller's settings.
    pub binding_status: flotilla_controllers::binding_status::Options,
    /// The namespace-sync controller's settings.
    pub namespace_sync: flotilla_controllers::namespace_sync::Options,
    /// The MachineSet controller's settings.
    pub machineset: flotilla_controllers::machineset::Options,
    /// The Machine controller's settings.
    pub machine: flotilla_controllers::machine::Options,
    /// The MachineHealthCheck controller's settings.
    pub machinehealthcheck: flotilla_controllers::machinehealthcheck::Options,
    /// The local provider's settings (off without a data directory).
    pub local_provider: crate::local_provider::Options,
    /// Auto-join's settings.
    pub auto_join: crate::auto_join::Options,
    /// The GitRepo controller's settings.
    pub gitrepo: flotilla_gitops::controller::Options,
}

type Build = fn(&Arc<Context>, &Options) -> anyhow::Result<BoxFuture<'static, ()>>;

/// One controller the hub can run.
#[derive(Debug)]
pub struct Controller {
    /// The name used in `--controllers`.
    pub name: &'static str,
    /// Builds the controller (subscribing to the shared caches) and returns the future that
    /// runs it until the context stops.
    pub build: Build,
}

/// Every controller the hub runs, in start order.
pub const ALL: &[Controller] = &[
    Controller {
        name: "cluster-status",
        build: |ctx, options| {
            let run = flotilla_controllers::cluster_status::controller(
                ctx,
                options.cluster_status.clone(),
            )
            .context("cluster-status")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "cluster",
        build: |ctx, options| {
            let run = flotilla_controllers::cluster::controller(ctx, options.cluster.clone())
                .context("cluster")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "detector",
        build: |ctx, options| {
            let run = flotilla_controllers::detector::controller(ctx, options.detector.clone())
                .context("detector")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "scheduler",
        build: |ctx, options| {
            let run = flotilla_scheduler::controller::controller(ctx, options.scheduler.clone())
                .context("scheduler")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "dependencies",
        build: |ctx, options| {
            let run =
                flotilla_controllers::dependencies::controller(ctx, options.dependencies.clone())
                    .context("dependencies")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "binding",
        build: |ctx, options| {
            let run = flotilla_controllers::binding::controller(ctx, options.binding.clone())
                .context("binding")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "execution",
        build: |ctx, options| {
            let run = flotilla_controllers::execution::controller(ctx, options.execution.clone())
                .context("execution")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "binding-status",
        build: |ctx, options| {
            let run = flotilla_controllers::binding_status::controller(
                ctx,
                options.binding_status.clone(),
            )
            .context("binding-status")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "namespace-sync",
        build: |ctx, options| {
            let run = flotilla_controllers::namespace_sync::controller(
                ctx,
                options.namespace_sync.clone(),
            )
            .context("namespace-sync")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "machineset",
        build: |ctx, options| {
            let run = flotilla_controllers::machineset::controller(ctx, options.machineset.clone())
                .context("machineset")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "machine",
        build: |ctx, options| {
            let run = flotilla_controllers::machine::controller(ctx, options.machine.clone())
                .context("machine")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "machinehealthcheck",
        build: |ctx, options| {
            let run = flotilla_controllers::machinehealthcheck::controller(
                ctx,
                options.machinehealthcheck.clone(),
            )
            .context("machinehealthcheck")?;
            Ok(run.boxed())
        },
    },
    Controller {
        name: "local-provider",
        build: |ctx, options| {
            crate::local_provider::controller(ctx, options.local_provider.clone())
                .context("local-provider")
        },
    },
    Controller {
        name: "auto-join",
        build: |ctx, options| {
            crate::auto_join::controller(ctx, options.auto_join.clone()).context("auto-join")
        },
    },
    Controller {
        name: "gitrepo",
        build: |ctx, options| {
            flotilla_gitops::controller::controller(ctx, options.gitrepo.clone()).context("gitrepo")
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

/// Builds the selected controllers on `ctx`, starts the shared caches and runs the controllers
/// until the context stops; returns once every in-flight reconcile has finished.
///
/// # Errors
///
/// When a controller cannot be built.
pub async fn run(
    ctx: &Arc<Context>,
    controllers: &[&'static Controller],
    options: &Options,
) -> anyhow::Result<()> {
    let mut running = Vec::with_capacity(controllers.len());
    for controller in controllers {
        running.push((controller.build)(ctx, options)?);
    }
    ctx.start();
    futures::future::join_all(running).await;
    Ok(())
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
        assert_eq!(
            names("*"),
            [
                "cluster-status",
                "cluster",
                "detector",
                "scheduler",
                "dependencies",
                "binding",
                "execution",
                "binding-status",
                "namespace-sync",
                "machineset",
                "machine",
                "machinehealthcheck",
                "local-provider",
                "auto-join",
                "gitrepo"
            ]
        );
        assert_eq!(
            names("*,-scheduler"),
            [
                "cluster-status",
                "cluster",
                "detector",
                "dependencies",
                "binding",
                "execution",
                "binding-status",
                "namespace-sync",
                "machineset",
                "machine",
                "machinehealthcheck",
                "local-provider",
                "auto-join",
                "gitrepo"
            ]
        );
        // Names match whole: removing `cluster` keeps `cluster-status`.
        assert_eq!(
            names("*,-cluster"),
            [
                "cluster-status",
                "detector",
                "scheduler",
                "dependencies",
                "binding",
                "execution",
                "binding-status",
                "namespace-sync",
                "machineset",
                "machine",
                "machinehealthcheck",
                "local-provider",
                "auto-join",
                "gitrepo"
            ]
        );
        assert_eq!(
            names("scheduler,cluster,cluster-status"),
            ["cluster-status", "cluster", "scheduler"]
        );
        assert_eq!(names("scheduler"), ["scheduler"]);
        assert_eq!(names("*,-detector,-dependencies").len(), 13);
        assert_eq!(names(""), Vec::<&str>::new());
        assert!(select("*,-nope").is_err());
        assert!(select("-*").is_err());
    }
}
