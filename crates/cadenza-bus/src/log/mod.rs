//! [`LogBus`]: the in-process event bus of the embedded mode — an append-only log on disk
//! that survives a process kill and can be replayed from the beginning to rebuild derived
//! state, the way Kafka is the source of truth in the distributed mode.
//!
//! Layout under the data dir:
//! - `topics/<topic>/0.log` — the topic's single partition (one partition per topic: the log
//!   gives a total order, which is stronger than Kafka's per-key order);
//! - `groups/<group>.json` — committed offsets per consumer group;
//! - `LOCK` — held (`flock`) while a process has the log open, so two processes never append
//!   to the same files.

mod offsets;
mod partition;
mod segment;
mod subscription;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::Notify;

use self::offsets::GroupOffsets;
use self::partition::Partition;
use self::segment::Record;
use self::subscription::LogSubscription;
use crate::{
    Delivery, Error, EventBus, Result, StartFrom, SubscribeOpts, Subscription, TopicSpec,
    validate_topic,
};

/// Tuning of [`LogBus`].
#[derive(Debug, Clone)]
pub struct LogBusOptions {
    /// fsync every append before `publish` returns (group commit batches concurrent
    /// publishers into one fsync). Without it an event survives a process kill but not a
    /// power loss. Default: on.
    pub fsync: bool,
    /// How often a subscription persists its committed offsets while messages flow; it also
    /// persists when it runs out of messages and on close. A crash redelivers at most this
    /// much work. Default: 200 ms.
    pub commit_interval: Duration,
    /// Largest event accepted (key + payload + headers). Default: 8 MiB.
    pub max_event_bytes: usize,
}

impl Default for LogBusOptions {
    fn default() -> Self {
        LogBusOptions {
            fsync: true,
            commit_interval: Duration::from_millis(200),
            max_event_bytes: 8 << 20,
        }
    }
}

/// The in-process, on-disk event bus. Cheap to clone; clones share the log.
#[derive(Debug, Clone)]
pub struct LogBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: LogBusOptions,
    topics: RwLock<HashMap<String, Arc<Partition>>>,
    /// Committed offsets as persisted, per group (loaded lazily).
    groups: Mutex<HashMap<String, GroupOffsets>>,
    /// `(group, topic)` pairs with a live subscription.
    members: Mutex<HashSet<(String, String)>>,
    /// Woken after every append; subscribers re-check their partitions.
    appended: Notify,
    _lock: File,
}

impl LogBus {
    /// Open the log under `dir` with default options (see [`LogBus::open_with`]).
    pub async fn open(dir: impl Into<PathBuf>) -> Result<LogBus> {
        LogBus::open_with(dir, LogBusOptions::default()).await
    }

    /// Open (creating) the log under `dir`, recovering every partition: a record torn by a
    /// crash mid-write is cut off; every record `publish` acknowledged is kept.
    pub async fn open_with(dir: impl Into<PathBuf>, opts: LogBusOptions) -> Result<LogBus> {
        let dir = dir.into();
        let inner = tokio::task::spawn_blocking(move || Inner::open(dir, opts))
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        Ok(LogBus {
            inner: Arc::new(inner),
        })
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The offset the next event on `topic` will get (= the number of events), if the topic
    /// exists.
    pub fn end_offset(&self, topic: &str) -> Option<i64> {
        self.inner.partition(topic).ok().map(|p| p.len())
    }
}

impl Inner {
    fn open(dir: PathBuf, opts: LogBusOptions) -> Result<Inner> {
        std::fs::create_dir_all(dir.join("topics")).map_err(Error::io(&dir))?;
        std::fs::create_dir_all(dir.join("groups")).map_err(Error::io(&dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(Error::io(&lock_path))?;
        lock.try_lock().map_err(|_| Error::Io {
            path: lock_path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "the event log is open in another process (or another LogBus in this one)",
            ),
        })?;
        let mut topics = HashMap::new();
        let topics_dir = dir.join("topics");
        for entry in std::fs::read_dir(&topics_dir).map_err(Error::io(&topics_dir))? {
            let entry = entry.map_err(Error::io(&topics_dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if validate_topic(&name).is_err() || !entry.path().is_dir() {
                continue;
            }
            let partition = Partition::open(&entry.path().join("0.log"), opts.fsync)?;
            topics.insert(name, Arc::new(partition));
        }
        Ok(Inner {
            dir,
            opts,
            topics: RwLock::new(topics),
            groups: Mutex::new(HashMap::new()),
            members: Mutex::new(HashSet::new()),
            appended: Notify::new(),
            _lock: lock,
        })
    }

    fn partition(&self, topic: &str) -> Result<Arc<Partition>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))
    }

    fn groups_dir(&self) -> PathBuf {
        self.dir.join("groups")
    }

    fn create_topic(&self, name: &str) -> Result<()> {
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if topics.contains_key(name) {
            return Ok(());
        }
        let topic_dir = self.dir.join("topics").join(name);
        std::fs::create_dir_all(&topic_dir).map_err(Error::io(&topic_dir))?;
        let partition = Partition::open(&topic_dir.join("0.log"), self.opts.fsync)?;
        offsets::sync_dir(&topic_dir)?;
        offsets::sync_dir(&self.dir.join("topics"))?;
        topics.insert(name.to_string(), Arc::new(partition));
        Ok(())
    }

    /// Committed offsets of `group` (from the cache, or disk the first time).
    fn committed(&self, group: &str) -> Result<GroupOffsets> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = groups.get(group) {
            return Ok(o.clone());
        }
        let o = offsets::load(&self.groups_dir(), group)?;
        groups.insert(group.to_string(), o.clone());
        Ok(o)
    }

    /// Merge `stored` into the group's committed offsets and persist them. Blocking.
    fn persist(&self, group: &str, stored: &GroupOffsets) -> Result<()> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let mut merged = match groups.get(group) {
            Some(o) => o.clone(),
            None => offsets::load(&self.groups_dir(), group)?,
        };
        merged.extend(stored.iter().map(|(t, o)| (t.clone(), *o)));
        offsets::store(&self.groups_dir(), group, &merged)?;
        groups.insert(group.to_string(), merged);
        Ok(())
    }

    fn leave(&self, group: &str, topics: &[String]) {
        let mut members = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        for t in topics {
            members.remove(&(group.to_string(), t.clone()));
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[async_trait]
impl EventBus for LogBus {
    async fn ensure_topics(&self, topics: &[TopicSpec]) -> Result<()> {
        for spec in topics {
            validate_topic(&spec.name)?;
        }
        let inner = self.inner.clone();
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        blocking(move || names.iter().try_for_each(|n| inner.create_topic(n))).await
    }

    async fn publish(
        &self,
        topic: &str,
        key: &[u8],
        payload: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<Delivery> {
        let partition = self.inner.partition(topic)?;
        let size = segment::encoded_len(key, &payload, &headers);
        if size > self.inner.opts.max_event_bytes {
            return Err(Error::TooLarge {
                size,
                limit: self.inner.opts.max_event_bytes,
            });
        }
        let record = Record {
            timestamp_ms: now_ms(),
            key: (!key.is_empty()).then(|| key.to_vec()),
            payload,
            headers,
        };
        let offset = blocking(move || partition.append(&segment::encode(&record))).await?;
        self.inner.appended.notify_waiters();
        Ok(Delivery {
            partition: 0,
            offset,
        })
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<i64>> {
        Ok(vec![self.inner.partition(topic)?.len()])
    }

    async fn subscribe(
        &self,
        group: &str,
        topics: &[&str],
        opts: SubscribeOpts,
    ) -> Result<Box<dyn Subscription>> {
        // Group names become file names: the topic rule keeps them safe.
        validate_topic(group).map_err(|_| Error::InvalidGroup(group.to_string()))?;
        let partitions = topics
            .iter()
            .map(|t| Ok(((*t).to_string(), self.inner.partition(t)?)))
            .collect::<Result<Vec<_>>>()?;
        {
            let mut members = self
                .inner
                .members
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(t) = topics
                .iter()
                .find(|t| members.contains(&(group.to_string(), (**t).to_string())))
            {
                return Err(Error::GroupBusy {
                    group: group.to_string(),
                    topic: (*t).to_string(),
                });
            }
            for t in topics {
                members.insert((group.to_string(), (*t).to_string()));
            }
        }
        let committed = match self.inner.committed(group) {
            Ok(c) => c,
            Err(e) => {
                let names: Vec<String> = topics.iter().map(|t| (*t).to_string()).collect();
                self.inner.leave(group, &names);
                return Err(e);
            }
        };
        let cursors = partitions
            .into_iter()
            .map(|(topic, partition)| {
                let end = partition.len();
                let next = match committed.get(&topic) {
                    Some(&o) if o > end => {
                        tracing::warn!(%topic, committed = o, end, "committed offset beyond the log's end; resuming at the end");
                        end
                    }
                    Some(&o) => o,
                    None if opts.from == StartFrom::Latest => end,
                    None => 0,
                };
                subscription::Cursor {
                    topic,
                    partition,
                    next,
                    committed: next,
                }
            })
            .collect();
        Ok(Box::new(LogSubscription::new(
            self.inner.clone(),
            group.to_string(),
            cursors,
        )))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
