//! A consumer group member reading [`super::LogBus`] topics.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::offsets::GroupOffsets;
use super::partition::Partition;
use super::{Inner, blocking};
use crate::{Error, Message, Result, Subscription};

/// Read position in one topic.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub topic: String,
    pub partition: Arc<Partition>,
    /// Next offset to deliver.
    pub next: i64,
    /// Next offset after the last commit (where a restart would resume).
    pub committed: i64,
}

#[derive(Debug)]
pub(crate) struct LogSubscription {
    inner: Arc<Inner>,
    group: String,
    cursors: Vec<Cursor>,
    /// Round-robin start, so one busy topic does not starve the others.
    turn: usize,
    /// Offsets committed by the caller but not yet persisted (next offset to read, per topic).
    stored: GroupOffsets,
    last_persist: Instant,
    closed: bool,
}

impl LogSubscription {
    pub fn new(inner: Arc<Inner>, group: String, cursors: Vec<Cursor>) -> LogSubscription {
        LogSubscription {
            inner,
            group,
            cursors,
            turn: 0,
            stored: GroupOffsets::new(),
            last_persist: Instant::now(),
            closed: false,
        }
    }

    fn try_next(&mut self) -> Result<Option<Message>> {
        let n = self.cursors.len();
        for i in 0..n {
            let idx = (self.turn + i) % n;
            let cursor = &mut self.cursors[idx];
            let Some(record) = cursor.partition.read(cursor.next) else {
                continue;
            };
            let record = record?;
            let message = Message {
                topic: cursor.topic.clone(),
                partition: 0,
                offset: cursor.next,
                key: record.key,
                payload: record.payload,
                headers: record.headers,
                timestamp_ms: record.timestamp_ms,
            };
            cursor.next += 1;
            self.turn = idx + 1;
            return Ok(Some(message));
        }
        Ok(None)
    }

    async fn persist(&mut self) -> Result<()> {
        if self.stored.is_empty() {
            return Ok(());
        }
        let snapshot = self.stored.clone();
        let (inner, group) = (self.inner.clone(), self.group.clone());
        blocking(move || inner.persist(&group, &snapshot)).await?;
        // `&mut self` kept commits out meanwhile: everything stored is now persisted.
        self.stored.clear();
        self.last_persist = Instant::now();
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        self.cursors.iter().map(|c| c.topic.clone()).collect()
    }
}

#[async_trait]
impl Subscription for LogSubscription {
    async fn next(&mut self) -> Result<Message> {
        loop {
            // Register interest before checking, so an append between the check and the
            // wait still wakes us.
            let inner = self.inner.clone();
            let appended = inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            if let Some(message) = self.try_next()? {
                return Ok(message);
            }
            // Caught up: a good moment to make committed offsets durable.
            self.persist().await?;
            appended.await;
        }
    }

    async fn commit(&mut self, message: &Message) -> Result<()> {
        let cursor = self.cursors.iter_mut().find(|c| {
            c.topic == message.topic && message.partition == 0 && message.offset < c.next
        });
        let Some(cursor) = cursor else {
            return Err(Error::NotSubscribed {
                topic: message.topic.clone(),
                partition: message.partition,
                offset: message.offset,
            });
        };
        cursor.committed = message.offset + 1;
        self.stored
            .insert(message.topic.clone(), message.offset + 1);
        if self.last_persist.elapsed() >= self.inner.opts.commit_interval {
            self.persist().await?;
        }
        Ok(())
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        let result = self.persist().await;
        self.closed = true;
        self.inner.leave(&self.group, &self.topics());
        result
    }

    fn lag(&self) -> Option<i64> {
        Some(
            self.cursors
                .iter()
                .map(|c| (c.partition.len() - c.committed).max(0))
                .sum(),
        )
    }
}

impl Drop for LogSubscription {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        // Dropped without close (a task cancelled on shutdown): keep what was committed.
        if !self.stored.is_empty()
            && let Err(e) = self.inner.persist(&self.group, &self.stored)
        {
            tracing::error!(group = %self.group, error = %e, "persisting committed offsets on drop failed");
        }
        self.inner.leave(&self.group, &self.topics());
    }
}
