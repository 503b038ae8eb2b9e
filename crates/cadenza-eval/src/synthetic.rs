//! A synthetic catalogue shaped like the rendered corpus (same field values), for tests and
//! benchmarks that must not depend on a built corpus.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalogue::{Catalogue, Track};

/// (era, ensemble, lead instrument, composer, tempo range)
type Kind = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    (f64, f64),
);
const KINDS: &[Kind] = &[
    (
        "classical",
        "string quartet",
        "violin",
        "Joseph Haydn",
        (60.0, 140.0),
    ),
    (
        "classical",
        "string orchestra",
        "strings",
        "Ludwig van Beethoven",
        (50.0, 130.0),
    ),
    (
        "baroque",
        "baroque trio",
        "violin",
        "Arcangelo Corelli",
        (60.0, 130.0),
    ),
    (
        "baroque",
        "choir",
        "voice",
        "Johann Sebastian Bach",
        (50.0, 90.0),
    ),
    (
        "baroque",
        "organ",
        "organ",
        "Johann Sebastian Bach",
        (50.0, 100.0),
    ),
    (
        "renaissance",
        "choir",
        "voice",
        "Giovanni Pierluigi da Palestrina",
        (40.0, 80.0),
    ),
    (
        "traditional",
        "solo violin",
        "violin",
        "Traditional",
        (90.0, 160.0),
    ),
    (
        "traditional",
        "solo flute",
        "flute",
        "Traditional",
        (80.0, 150.0),
    ),
    (
        "romantic",
        "piano",
        "piano",
        "Frédéric Chopin",
        (40.0, 140.0),
    ),
    (
        "romantic",
        "voice and piano",
        "voice",
        "Franz Schubert",
        (40.0, 110.0),
    ),
    (
        "romantic",
        "string quartet",
        "violin",
        "Robert Schumann",
        (50.0, 140.0),
    ),
];

/// `n` tracks, three per work, seeded.
pub fn catalogue(n: usize, seed: u64) -> Catalogue {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tracks = Vec::with_capacity(n);
    let mut kind = 0;
    for i in 0..n {
        if i % 3 == 0 {
            kind = rng.random_range(0..KINDS.len());
        }
        let (era, ensemble, lead, composer, (lo, hi)) = KINDS[kind];
        tracks.push(Track {
            track_id: format!("s{i:05}"),
            title: format!("work {} part {}", i / 3, i % 3 + 1),
            work_id: format!("{}/w{}", composer.to_lowercase().replace(' ', "_"), i / 3),
            movement: format!("{}", i % 3 + 1),
            composer: composer.into(),
            era: era.into(),
            ensemble: ensemble.into(),
            lead_instrument: lead.into(),
            tempo_bpm: Some(rng.random_range(lo..hi).round()),
            mean_dynamic: Some(rng.random_range(45.0..115.0)),
            duration_s: 30.0,
            audio_path: format!("audio/s{i:05}.flac"),
            ..Default::default()
        });
    }
    Catalogue::new(Default::default(), tracks)
}
