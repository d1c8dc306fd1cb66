//! Who carries a workload's commands to the cluster: slotcheck's own router, or a client library
//! under test. Every executor answers with the same [`Execution`], so the history has one format
//! whichever client ran it; where a library hides its redirects the history says so.

use crate::codis::{CodisRouter, SharedCodisTable};
use crate::external::{External, ExternalSpec};
use crate::redis_rs::RedisRs;
use crate::router::{Execution, OnDone, Router, RouterConfig};
use crate::slotmap::SharedSlotMap;
use redis::Cmd;
use serde::Serialize;

/// Whether a client's redirects reach the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectVisibility {
    /// Every `MOVED`/`ASK`/`TRYAGAIN`/`CLUSTERDOWN` the client met is recorded.
    Seen,
    /// The library follows redirects out of sight: an op without redirects may still have had some.
    Hidden,
}

/// What the history header says about the client that ran the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientInfo {
    /// The client's name: `slotcheck`, `redis-rs`, `redis-py`, `node-redis`, or an adapter's own.
    pub name: String,
    /// The library's version, as the library reports it.
    pub version: String,
    /// Whether its redirects are in the history.
    pub redirects: RedirectVisibility,
}

impl ClientInfo {
    /// slotcheck's own router, which records every hop.
    pub fn slotcheck() -> ClientInfo {
        ClientInfo {
            name: "slotcheck".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            redirects: RedirectVisibility::Seen,
        }
    }
}

/// Which client a workload's processes use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ClientChoice {
    /// slotcheck's own router: routes by slot, follows and records every redirect.
    #[default]
    Slotcheck,
    /// The `redis` crate's async cluster client, its redirects observed by a wrapper connection.
    RedisRs,
    /// A client library run as a child process speaking the adapter protocol (redis-py,
    /// node-redis, or any program).
    External(ExternalSpec),
}

/// Written as its name, as the command line takes it.
impl Serialize for ClientChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl ClientChoice {
    /// The name on the command line and in the history header.
    pub fn name(&self) -> &str {
        match self {
            ClientChoice::Slotcheck => "slotcheck",
            ClientChoice::RedisRs => "redis-rs",
            ClientChoice::External(spec) => &spec.name,
        }
    }
}

/// A client library's connection to the cluster, as a workload process uses it.
pub enum Executor {
    /// slotcheck's own router.
    Router(Router),
    /// The `redis` crate's cluster client.
    RedisRs(RedisRs),
    /// A client library in a child process (boxed: it is twice a router's size).
    External(Box<External>),
    /// slotcheck's router playing a Codis proxy, for servers without Redis Cluster (PikiwiDB).
    Codis(CodisRouter),
}

impl Executor {
    /// Sends `cmd`, whose only key is `key`, and reports how it ended and how it got there.
    pub async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        match self {
            Executor::Router(router) => router.execute(key, cmd).await,
            Executor::RedisRs(client) => client.execute(key, cmd).await,
            Executor::External(client) => client.execute(key, cmd).await,
            Executor::Codis(router) => router.execute(key, cmd).await,
        }
    }

    /// Sends every `(key, command)` of `items` at once (a pipeline), telling `on_done` each
    /// command's end (its index and execution) as soon as the client knows it, so that its
    /// completion is recorded then. redis-rs and Codis routing have no pipelines:
    /// [`crate::WorkloadConfig::validate`] refuses them, and here each command fails unsent.
    pub async fn execute_pipeline(&mut self, items: &[(Vec<u8>, Cmd)], on_done: OnDone<'_>) {
        let name = match self {
            Executor::Router(router) => return router.execute_pipeline(items, on_done).await,
            Executor::External(client) => {
                // The adapter answers a pipeline in one line: every end is known at once.
                let done = client.pipeline(items).await;
                return done
                    .into_iter()
                    .enumerate()
                    .for_each(|(i, e)| on_done(i, e));
            }
            Executor::RedisRs(_) => "redis-rs",
            Executor::Codis(_) => "Codis routing",
        };
        let text = format!("{name} does not support pipelines; nothing sent");
        for (i, (key, _)) in items.iter().enumerate() {
            on_done(i, Execution::failed(key, &text));
        }
    }

    /// Sends `cmds`, whose keys are all in `key`'s slot, as one `MULTI`/`EXEC` transaction; `Ok`
    /// is `EXEC`'s reply, one value per command. Clients that cannot run one are refused when the
    /// workload is configured ([`crate::WorkloadConfig::validate`]); here they fail, sending
    /// nothing.
    pub async fn execute_txn(&mut self, key: &[u8], cmds: &[Cmd]) -> Execution {
        let refused = |why: &str| Execution::failed(key, why);
        match self {
            Executor::Router(router) => router.execute_txn(key, cmds).await,
            Executor::RedisRs(_) => refused("the redis-rs client does not run MULTI/EXEC"),
            Executor::External(client) => client.transaction(key, cmds).await,
            Executor::Codis(_) => refused("the Codis router does not run MULTI/EXEC"),
        }
    }
}

/// How to open a workload process's executor: kept by a client so that it can open a fresh one
/// (new connections, a new library instance) when it retires after an `info`.
#[derive(Debug, Clone)]
pub struct ClientFactory {
    /// Which client.
    pub choice: ClientChoice,
    /// Cluster nodes to start from, `host:port`.
    pub seeds: Vec<String>,
    /// The slot map slotcheck's routers share.
    pub slots: SharedSlotMap,
    /// Timeouts and hop limits.
    pub config: RouterConfig,
    /// Route by this Codis slot table instead of Redis Cluster's (only slotcheck's client can).
    pub codis: Option<SharedCodisTable>,
}

impl ClientFactory {
    /// Opens an executor; an error means nothing was sent.
    pub async fn open(&self) -> Result<Executor, String> {
        if let Some(table) = &self.codis {
            return match &self.choice {
                ClientChoice::Slotcheck => Ok(Executor::Codis(CodisRouter::new(
                    table.clone(),
                    self.config,
                ))),
                other => Err(format!(
                    "client {} does not support Codis routing (only slotcheck does)",
                    other.name()
                )),
            };
        }
        match &self.choice {
            ClientChoice::Slotcheck => Ok(Executor::Router(Router::new(
                self.seeds.clone(),
                self.slots.clone(),
                self.config,
            ))),
            ClientChoice::RedisRs => RedisRs::open(&self.seeds, &self.config)
                .await
                .map(Executor::RedisRs),
            ClientChoice::External(spec) => External::open(spec, &self.seeds, &self.config)
                .await
                .map(|client| Executor::External(Box::new(client))),
        }
    }

    /// The client the history header names. Only an external adapter is opened to ask it (it
    /// says its library's version when it starts); the others are known without connecting.
    pub async fn info(&self) -> Result<ClientInfo, String> {
        match &self.choice {
            ClientChoice::Slotcheck => Ok(ClientInfo::slotcheck()),
            ClientChoice::RedisRs => Ok(RedisRs::describe()),
            ClientChoice::External(spec) => {
                let client = External::open(spec, &self.seeds, &self.config).await?;
                let info = client.info();
                client.close().await;
                Ok(info)
            }
        }
    }
}
