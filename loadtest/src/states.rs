//! `cadenza-load states`: after `listens`, does a process serve every listener's state as the
//! replay made it? Each listener's expected count follows from `--count` and `--users`
//! exactly as `listens` splits them; the server (ranking, with its own index materialised from
//! `cadenza.user-state`) is asked for each one until all match or `--timeout` passes.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use cadenza_proto::v1::GetUserStateRequest;
use cadenza_proto::v1::catalog_client::CatalogClient;
use clap::Args;

use crate::grpc::{Server, user_id};

#[derive(Debug, Args)]
pub struct StatesArgs {
    #[command(flatten)]
    pub server: Server,
    /// Listens the replay published (`listens --count`).
    #[arg(long)]
    pub count: usize,
    /// Listeners they were spread over (`listens --users`).
    #[arg(long)]
    pub users: usize,
    /// Give up after this many seconds (a restarted server may still be catching up).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// Listens per listener, as `listens` publishes them.
pub fn expected(count: usize, users: usize) -> Vec<u64> {
    let per_user = count.div_ceil(users.max(1));
    let mut left = count;
    (0..users)
        .map(|_| {
            let n = per_user.min(left);
            left -= n;
            n as u64
        })
        .collect()
}

pub fn run(args: StatesArgs) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let channel = args.server.channel().await?;
        let mut catalog = CatalogClient::with_interceptor(channel, args.server.bearer()?);
        let want = expected(args.count, args.users);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(args.timeout);
        let mut pending: Vec<usize> = (0..want.len()).filter(|u| want[*u] > 0).collect();
        let mut short = 0usize;
        while !pending.is_empty() {
            let mut still = Vec::new();
            let mut over = 0usize;
            short = 0;
            for &u in &pending {
                let got = match catalog
                    .get_user_state(GetUserStateRequest {
                        user_id: user_id(u),
                    })
                    .await
                {
                    Ok(s) => s.into_inner().listen_count,
                    Err(s) if s.code() == tonic::Code::NotFound => 0,
                    Err(s) => return Err(s).context(format!("state of {}", user_id(u))),
                };
                if got != want[u] {
                    if got > want[u] {
                        over += 1;
                    } else {
                        short += 1;
                    }
                    still.push(u);
                }
            }
            pending = still;
            // More than the replay published can only grow: fail at once.
            anyhow::ensure!(
                over == 0,
                "{over} listeners have more listens than were published (double-counted)"
            );
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        anyhow::ensure!(
            pending.is_empty(),
            "after {} s, {short} of {} listeners are served with fewer listens than published \
             (first: {})",
            args.timeout,
            want.len(),
            user_id(pending[0])
        );
        println!(
            "all {} listeners served with exactly their {} published listens ({:.1} s to match)",
            want.len(),
            args.count,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_the_publishers() {
        assert_eq!(expected(10, 4), vec![3, 3, 3, 1]);
        assert_eq!(expected(8, 4), vec![2, 2, 2, 2]);
        assert_eq!(expected(3, 5), vec![1, 1, 1, 0, 0]);
        assert_eq!(expected(100_000, 5_000).iter().sum::<u64>(), 100_000);
    }
}
