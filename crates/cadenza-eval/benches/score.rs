//! Serving cost: scoring the whole catalogue for one user with the sequential model (BERT4Rec,
//! 2 layers, 2 heads, hidden 200, history of 49 plays), reported against a plain dot-product
//! scan of the same catalogue measured in the same run. Target: ≤ 2 ms at 1,000 tracks.
//!
//! `cargo bench -p cadenza-eval --bench score` (`-- --items N` to change the catalogue size).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cadenza_eval::embeddings::random_table;
use cadenza_eval::items::dot_scan;
use cadenza_eval::methods::{Bert4Rec, Bert4RecConfig, Counts, Knn, PopFusion, Ranker};

fn median(mut f: impl FnMut(), reps: usize) -> Duration {
    for _ in 0..reps / 10 + 1 {
        f();
    }
    let mut t: Vec<Duration> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--items")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(1000);
    let dim = 200;
    let table = random_table(n, dim, 1);
    let history: Vec<usize> = (0..49).map(|i| (i * 37) % n).collect();
    let counts = cadenza_eval::methods::counts_of(&history);
    let q: Vec<f32> = table.row(0).to_vec();
    let scan = median(
        || {
            black_box(dot_scan(black_box(&table.data), dim, black_box(&q)));
        },
        2000,
    );
    let bert = Bert4Rec::init(&table, Bert4RecConfig::default()).expect("model");
    // The same forward pass through candle (what training uses), for the serving path's gain.
    let candle = median(
        || {
            black_box(
                bert.score_batch(&[black_box(&history[..])])
                    .expect("forward"),
            );
        },
        100,
    );
    let seq = median(
        || {
            black_box(bert.score_all(black_box(&history), &Counts::new()));
        },
        300,
    );
    let fused = PopFusion {
        inner: bert,
        name: "bert4rec_pop".into(),
    };
    let pop = median(
        || {
            black_box(fused.score_all(black_box(&history), &counts));
        },
        300,
    );
    let knn = Knn::new(&table);
    let k = median(
        || {
            black_box(knn.score_all(black_box(&history), &counts));
        },
        2000,
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "catalogue {n} items × {dim}-d, history 49 plays, median of repeated calls, one thread of the caller"
    );
    println!("dot-product scan   {:8.3} ms  (1.0×)", ms(scan));
    println!(
        "knn                {:8.3} ms  ({:.1}×)",
        ms(k),
        ms(k) / ms(scan)
    );
    println!(
        "bert4rec           {:8.3} ms  ({:.1}×)  target ≤ 2 ms: {}",
        ms(seq),
        ms(seq) / ms(scan),
        if ms(seq) <= 2.0 { "met" } else { "MISSED" }
    );
    // Shorter histories (the default corpus's synthetic listeners have a median of about 25
    // plays in their window): the cost grows with the history, the window caps it at 49.
    for len in [10usize, 25] {
        let h: Vec<usize> = history[history.len() - len..].to_vec();
        let t = median(
            || {
                black_box(fused.inner.score_all(black_box(&h), &Counts::new()));
            },
            300,
        );
        println!(
            "bert4rec, {len:2} plays {:8.3} ms  ({:.1}×)",
            ms(t),
            ms(t) / ms(scan)
        );
    }
    println!(
        "bert4rec (candle)  {:8.3} ms  ({:.1}×)  the training framework's forward pass",
        ms(candle),
        ms(candle) / ms(scan)
    );
    println!(
        "bert4rec_pop       {:8.3} ms  ({:.1}×)",
        ms(pop),
        ms(pop) / ms(scan)
    );
}
