//! `LogBus`: the contract, plus what only an on-disk log has to prove — recovery from a torn
//! tail, durability across reopen and across `kill -9`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cadenza_bus::{Error, EventBus, LogBus, StartFrom, SubscribeOpts, TopicSpec};
use tempfile::TempDir;

use crate::contract::recv;

pub struct Fixture {
    bus: LogBus,
    _dir: TempDir,
}

impl Fixture {
    pub async fn new() -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let bus = LogBus::open(dir.path()).await.unwrap();
        Some(Fixture { bus, _dir: dir })
    }

    pub fn bus(&self) -> &dyn EventBus {
        &self.bus
    }
}

crate::contract_tests!(Fixture::new().await);

const EARLIEST: SubscribeOpts = SubscribeOpts {
    from: StartFrom::Earliest,
};

async fn publish_n(bus: &LogBus, topic: &str, range: std::ops::Range<i32>) {
    for i in range {
        bus.publish(topic, b"k", i.to_string().into_bytes(), vec![])
            .await
            .unwrap();
    }
}

async fn payloads(bus: &LogBus, group: &str, topic: &str, n: usize) -> Vec<String> {
    let mut sub = bus.subscribe(group, &[topic], EARLIEST).await.unwrap();
    let mut out = vec![];
    for i in 0..n {
        let m = recv(&mut sub).await;
        assert_eq!(
            sub.lag(),
            Some((n - i) as i64),
            "lag counts uncommitted events"
        );
        sub.commit(&m).await.unwrap();
        out.push(String::from_utf8(m.payload).unwrap());
    }
    assert_eq!(sub.lag(), Some(0), "everything committed");
    sub.close().await.unwrap();
    out
}

#[tokio::test]
async fn torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = LogBus::open(dir.path()).await.unwrap();
        bus.ensure_topics(&[TopicSpec::new("t", 1)]).await.unwrap();
        publish_n(&bus, "t", 0..3).await;
    }
    // A crash mid-append: half a frame, then noise.
    let file = dir.path().join("topics/t/0.log");
    let clean_len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&[40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();

    let bus = LogBus::open(dir.path()).await.unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        clean_len,
        "tail cut"
    );
    assert_eq!(bus.end_offset("t"), Some(3));
    let d = bus.publish("t", b"k", b"3".to_vec(), vec![]).await.unwrap();
    assert_eq!(d.offset, 3, "appends continue after the last good record");
    assert_eq!(payloads(&bus, "g", "t", 4).await, ["0", "1", "2", "3"]);
}

#[tokio::test]
async fn events_and_committed_offsets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let bus = LogBus::open(dir.path()).await.unwrap();
        bus.ensure_topics(&[TopicSpec::new("t", 1)]).await.unwrap();
        publish_n(&bus, "t", 0..5).await;
        let mut sub = bus.subscribe("g", &["t"], EARLIEST).await.unwrap();
        for _ in 0..3 {
            let m = recv(&mut sub).await;
            sub.commit(&m).await.unwrap();
        }
        // Dropped, not closed (a cancelled task): what was committed is still kept.
        drop(sub);
    }
    let bus = LogBus::open(dir.path()).await.unwrap();
    assert_eq!(bus.end_offset("t"), Some(5));
    let mut sub = bus.subscribe("g", &["t"], EARLIEST).await.unwrap();
    assert_eq!(recv(&mut sub).await.payload, b"3");
    sub.close().await.unwrap();
}

#[tokio::test]
async fn one_member_per_group_and_topic() {
    let f = Fixture::new().await.unwrap();
    f.bus
        .ensure_topics(&[TopicSpec::new("t", 1)])
        .await
        .unwrap();
    let sub = f.bus.subscribe("g", &["t"], EARLIEST).await.unwrap();
    let busy = f.bus.subscribe("g", &["t"], EARLIEST).await.err().unwrap();
    assert!(matches!(busy, Error::GroupBusy { .. }), "{busy}");
    sub.close().await.unwrap();
    f.bus.subscribe("g", &["t"], EARLIEST).await.unwrap();
}

#[tokio::test]
async fn unknown_topics_and_bad_names_are_refused() {
    let f = Fixture::new().await.unwrap();
    let e = f
        .bus
        .publish("missing", b"k", vec![], vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTopic(_)), "{e}");
    let e = f
        .bus
        .subscribe("g", &["missing"], EARLIEST)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::UnknownTopic(_)), "{e}");
    for bad in ["", "..", "a/b", "sp ace", &"x".repeat(250)] {
        let e = f
            .bus
            .ensure_topics(&[TopicSpec::new(bad, 1)])
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidTopic(_)), "{bad:?}: {e}");
    }
    let e = f.bus.subscribe("../g", &[], EARLIEST).await.err().unwrap();
    assert!(matches!(e, Error::InvalidGroup(_)), "{e}");
}

#[tokio::test]
async fn a_second_open_of_the_same_dir_is_refused() {
    let f = Fixture::new().await.unwrap();
    let e = LogBus::open(f.bus.dir()).await.unwrap_err();
    assert!(e.to_string().contains("open in another process"), "{e}");
}

#[tokio::test]
async fn a_waiting_subscriber_wakes_on_publish() {
    let f = Fixture::new().await.unwrap();
    f.bus
        .ensure_topics(&[TopicSpec::new("t", 1)])
        .await
        .unwrap();
    let mut sub = f.bus.subscribe("g", &["t"], EARLIEST).await.unwrap();
    let waiting = tokio::spawn(async move { recv(&mut sub).await.payload });
    tokio::task::yield_now().await;
    publish_n(&f.bus, "t", 7..8).await;
    assert_eq!(waiting.await.unwrap(), b"7");
}

/// Environment variable that turns `crash_child` into the child of `kill_9_loses_nothing_acknowledged`.
const CRASH_DIR: &str = "CADENZA_BUS_CRASH_DIR";

/// Child half of the kill -9 test (a no-op in a normal run): publishes numbered events as
/// fast as it can, printing each acknowledgement, until it is killed.
#[tokio::test]
async fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let bus = LogBus::open(dir).await.unwrap();
    bus.ensure_topics(&[TopicSpec::new("t", 1)]).await.unwrap();
    let mut stdout = std::io::stdout();
    for i in 0.. {
        let d = bus
            .publish("t", b"k", i.to_string().into_bytes(), vec![])
            .await
            .unwrap();
        writeln!(stdout, "acked {}", d.offset).unwrap();
        stdout.flush().unwrap();
    }
}

#[tokio::test]
async fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "log::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last_acked = -1i64;
    // Kill it mid-stream, once it is well under way.
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            last_acked = n.parse().unwrap();
            if last_acked >= 300 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            last_acked = n.parse().unwrap();
        }
    }
    assert!(last_acked >= 300, "child never got going");

    let bus = LogBus::open(dir.path()).await.unwrap();
    let end = bus.end_offset("t").unwrap();
    assert!(
        end > last_acked,
        "acknowledged {last_acked}, log ends at {end}"
    );
    let all = payloads(&bus, "verify", "t", end as usize).await;
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p, &i.to_string(), "record {i} intact and in order");
    }
}
