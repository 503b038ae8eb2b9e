//! Synthetic listeners: archetypes of taste defined on catalogue metadata only — never on
//! embeddings, or the evaluation of embeddings would be circular — and a seeded generator of
//! listening sessions (archetype mixtures, drift, skips, repeats of favourites).
//!
//! The same [`ListenGenerator`] feeds the offline evaluation and Kafka replays: it is an
//! iterator of [`ListenEvent`]s, each user's events in time order, users one after another
//! (the bus keys events by user, so per-user order is the order that matters).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};
use serde::{Deserialize, Serialize};

use crate::catalogue::{Catalogue, Track};

/// A kind of listener. Each scores a track's metadata with an affinity in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    FastViolin,
    OrchestralPurist,
    BaroqueDevotee,
    ChoralListener,
    FolkFiddler,
    RomanticPiano,
    QuietEvening,
    Explorer,
}

impl Archetype {
    pub const ALL: [Archetype; 8] = [
        Archetype::FastViolin,
        Archetype::OrchestralPurist,
        Archetype::BaroqueDevotee,
        Archetype::ChoralListener,
        Archetype::FolkFiddler,
        Archetype::RomanticPiano,
        Archetype::QuietEvening,
        Archetype::Explorer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Archetype::FastViolin => "fast-tempo violin enthusiast",
            Archetype::OrchestralPurist => "orchestral purist",
            Archetype::BaroqueDevotee => "baroque devotee",
            Archetype::ChoralListener => "choral listener",
            Archetype::FolkFiddler => "folk fiddler",
            Archetype::RomanticPiano => "romantic piano",
            Archetype::QuietEvening => "quiet-evening listener",
            Archetype::Explorer => "explorer",
        }
    }

    /// How much a listener of this kind likes a track, from its metadata alone.
    pub fn affinity(self, t: &Track) -> f64 {
        let lead = t.lead_instrument.to_lowercase();
        let ens = t.ensemble.to_lowercase();
        let era = t.era.to_lowercase();
        // A recording without score data is neither fast nor slow, loud nor soft: neutral.
        let fast = t
            .tempo_bpm
            .map_or(0.5, |b| ((b - 70.0) / 50.0).clamp(0.0, 1.0));
        let slow = 1.0 - fast;
        let soft = t
            .mean_dynamic
            .map_or(0.5, |v| ((100.0 - v) / 40.0).clamp(0.0, 1.0));
        let violin: f64 = if lead.contains("violin") || ens.contains("violin") {
            1.0
        } else if lead.contains("string") || ens.contains("quartet") {
            0.5
        } else {
            0.0
        };
        let a: f64 = match self {
            Archetype::FastViolin => 0.55 * violin + 0.45 * fast * violin.max(0.3),
            Archetype::OrchestralPurist => {
                if ens.contains("orchestra") {
                    1.0
                } else if ens.contains("quartet") || ens.contains("trio") {
                    0.35
                } else {
                    0.0
                }
            }
            Archetype::BaroqueDevotee => {
                let e: f64 = match era.as_str() {
                    "baroque" => 1.0,
                    "renaissance" => 0.45,
                    "classical" => 0.2,
                    _ => 0.0,
                };
                let organ = if lead.contains("organ") || ens.contains("baroque") {
                    0.3
                } else {
                    0.0
                };
                (e + organ).min(1.0)
            }
            Archetype::ChoralListener => {
                if ens.contains("choir") || ens.contains("chor") {
                    1.0
                } else if lead.contains("voice") {
                    0.55
                } else {
                    0.0
                }
            }
            Archetype::FolkFiddler => {
                let trad = era == "traditional" || t.composer.eq_ignore_ascii_case("traditional");
                let trad = if trad { 1.0 } else { 0.0 };
                let instr = if lead.contains("violin") || lead.contains("fiddle") {
                    1.0
                } else if lead.contains("flute") || lead.contains("fife") {
                    0.5
                } else {
                    0.0
                };
                trad * (0.5 + 0.3 * instr + 0.2 * fast)
            }
            Archetype::RomanticPiano => {
                let e = if era == "romantic" { 0.45 } else { 0.0 };
                let p = if lead.contains("piano") || ens.contains("piano") {
                    0.55
                } else {
                    0.0
                };
                e + p
            }
            Archetype::QuietEvening => 0.5 * slow + 0.5 * soft,
            Archetype::Explorer => 0.5,
        };
        a.clamp(0.0, 1.0)
    }
}

/// Knobs of the generator; the defaults give ~20–60 plays per user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerConfig {
    pub n_users: usize,
    pub seed: u64,
    /// Dirichlet concentration of the archetype mixture: small → one dominant archetype.
    pub mixture_alpha: f64,
    /// Inclusive range of sessions per user.
    pub sessions: (usize, usize),
    /// Inclusive range of plays per session.
    pub session_len: (usize, usize),
    /// Chance per play that the session's archetype is redrawn from the mixture.
    pub drift: f64,
    /// Chance per play of replaying one of the user's favourites.
    pub repeat: f64,
    /// Chance per play of staying in the work of the previous play (next movement, …).
    pub same_work: f64,
    /// Softmax temperature over affinities: lower → pickier listeners.
    pub temperature: f64,
    /// Favourites per user (the pool repeats are drawn from).
    pub favourites: usize,
    /// Epoch milliseconds of the first possible session.
    pub start_ms: i64,
    /// Length of the window sessions are spread over.
    pub span_days: u32,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            n_users: 200,
            seed: 7,
            mixture_alpha: 0.35,
            sessions: (2, 6),
            session_len: (3, 15),
            drift: 0.1,
            repeat: 0.12,
            same_work: 0.2,
            temperature: 0.08,
            favourites: 5,
            start_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            span_days: 60,
        }
    }
}

/// One play, as ingest publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenEvent {
    pub event_id: u64,
    pub user_id: String,
    pub track_id: String,
    pub ts_ms: i64,
    /// Share of the track that was played, in `(0, 1]`.
    pub play_fraction: f32,
    pub skipped: bool,
}

/// A synthetic user: who they are is known, which is what makes per-archetype metrics possible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub user_id: String,
    /// Weight of each archetype of [`Archetype::ALL`]; sums to 1.
    pub mixture: Vec<f64>,
    pub favourites: Vec<usize>,
}

impl Listener {
    /// The archetype with the largest weight (ties: the first).
    pub fn dominant(&self) -> Archetype {
        let mut best = 0;
        for (i, w) in self.mixture.iter().enumerate() {
            if *w > self.mixture[best] {
                best = i;
            }
        }
        Archetype::ALL[best]
    }

    /// Mixture-weighted affinity for a track.
    pub fn affinity(&self, t: &Track) -> f64 {
        Archetype::ALL
            .iter()
            .zip(&self.mixture)
            .map(|(a, w)| w * a.affinity(t))
            .sum()
    }
}

/// Seeded generator of listeners and their plays; see the module docs.
#[derive(Debug)]
pub struct ListenGenerator<'a> {
    catalogue: &'a Catalogue,
    config: ListenerConfig,
    rng: ChaCha8Rng,
    /// Per archetype: cumulative softmax weights over the catalogue.
    cdf: Vec<Vec<f64>>,
    /// Per track: the other tracks of its work.
    work_peers: Vec<Vec<usize>>,
    next_user: usize,
    pending: std::vec::IntoIter<ListenEvent>,
    next_event_id: u64,
    listeners: Vec<Listener>,
}

impl<'a> ListenGenerator<'a> {
    pub fn new(catalogue: &'a Catalogue, config: ListenerConfig) -> Self {
        let cdf = Archetype::ALL
            .iter()
            .map(|a| {
                let mut acc = 0.0;
                catalogue
                    .tracks
                    .iter()
                    .map(|t| {
                        acc += (a.affinity(t) / config.temperature).exp();
                        acc
                    })
                    .collect()
            })
            .collect();
        let works = catalogue.work_ids();
        let work_peers = (0..catalogue.len())
            .map(|i| {
                (0..catalogue.len())
                    .filter(|&j| j != i && works[j] == works[i])
                    .collect()
            })
            .collect();
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        ListenGenerator {
            catalogue,
            config,
            rng,
            cdf,
            work_peers,
            next_user: 0,
            pending: Vec::new().into_iter(),
            next_event_id: 0,
            listeners: Vec::new(),
        }
    }

    /// Listeners generated so far (all of them once the iterator is exhausted).
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Run the generator to the end: every event (per user in time order) and every listener.
    pub fn generate(
        catalogue: &Catalogue,
        config: ListenerConfig,
    ) -> (Vec<ListenEvent>, Vec<Listener>) {
        let mut g = ListenGenerator::new(catalogue, config);
        let events: Vec<ListenEvent> = g.by_ref().collect();
        (events, g.listeners)
    }

    fn sample_cdf(&mut self, a: usize) -> usize {
        let cdf = &self.cdf[a];
        let x = self.rng.random::<f64>() * cdf[cdf.len() - 1];
        cdf.partition_point(|&c| c < x).min(cdf.len() - 1)
    }

    fn sample_mixture(&mut self, mixture: &[f64]) -> usize {
        let x: f64 = self.rng.random();
        let mut acc = 0.0;
        for (i, w) in mixture.iter().enumerate() {
            acc += w;
            if x < acc {
                return i;
            }
        }
        mixture.len() - 1
    }

    fn make_user(&mut self) -> Vec<ListenEvent> {
        let c = self.config.clone();
        let gamma = Gamma::new(c.mixture_alpha, 1.0).expect("alpha > 0");
        let raw: Vec<f64> = Archetype::ALL
            .iter()
            .map(|_| gamma.sample(&mut self.rng).max(1e-12))
            .collect();
        let sum: f64 = raw.iter().sum();
        let mixture: Vec<f64> = raw.iter().map(|x| x / sum).collect();
        let favourites: Vec<usize> = (0..c.favourites)
            .map(|_| {
                let a = self.sample_mixture(&mixture);
                self.sample_cdf(a)
            })
            .collect();
        let listener = Listener {
            user_id: format!("u{:05}", self.next_user),
            mixture,
            favourites,
        };
        let n_sessions = self
            .rng
            .random_range(c.sessions.0..=c.sessions.1.max(c.sessions.0));
        let span = i64::from(c.span_days) * 86_400_000;
        let mut starts: Vec<i64> = (0..n_sessions)
            .map(|_| c.start_ms + self.rng.random_range(0..span.max(1)))
            .collect();
        starts.sort_unstable();
        let mut events = Vec::new();
        let mut last_end = i64::MIN;
        for start in starts {
            // Sessions never overlap: a new one starts at least an hour after the last play.
            let mut ts = start.max(last_end.saturating_add(3_600_000));
            let len = self
                .rng
                .random_range(c.session_len.0..=c.session_len.1.max(c.session_len.0));
            let mut arch = self.sample_mixture(&listener.mixture);
            let mut prev: Option<usize> = None;
            for _ in 0..len {
                if self.rng.random::<f64>() < c.drift {
                    arch = self.sample_mixture(&listener.mixture);
                }
                let roll: f64 = self.rng.random();
                let item = match prev {
                    _ if roll < c.repeat && !listener.favourites.is_empty() => {
                        listener.favourites[self.rng.random_range(0..listener.favourites.len())]
                    }
                    Some(p) if roll < c.repeat + c.same_work && !self.work_peers[p].is_empty() => {
                        let peers = &self.work_peers[p];
                        peers[self.rng.random_range(0..peers.len())]
                    }
                    _ => self.sample_cdf(arch),
                };
                let track = &self.catalogue.tracks[item];
                let u = listener.affinity(track);
                let p_skip = 0.05 + 0.6 * (1.0 - u).powi(2);
                let skipped = self.rng.random::<f64>() < p_skip;
                let play_fraction: f32 = if skipped {
                    self.rng.random_range(0.02..0.3)
                } else if self.rng.random::<f64>() < 0.7 {
                    1.0
                } else {
                    self.rng.random_range(0.6..1.0)
                };
                events.push(ListenEvent {
                    event_id: self.next_event_id,
                    user_id: listener.user_id.clone(),
                    track_id: track.track_id.clone(),
                    ts_ms: ts,
                    play_fraction,
                    skipped,
                });
                self.next_event_id += 1;
                let dur = if track.duration_s > 0.0 {
                    track.duration_s
                } else {
                    30.0
                };
                ts += (dur * f64::from(play_fraction) * 1000.0) as i64
                    + self.rng.random_range(500..5_000);
                prev = Some(item);
            }
            last_end = ts;
        }
        self.listeners.push(listener);
        self.next_user += 1;
        events
    }
}

impl Iterator for ListenGenerator<'_> {
    type Item = ListenEvent;

    fn next(&mut self) -> Option<ListenEvent> {
        loop {
            if let Some(e) = self.pending.next() {
                return Some(e);
            }
            if self.next_user >= self.config.n_users || self.catalogue.is_empty() {
                return None;
            }
            self.pending = self.make_user().into_iter();
        }
    }
}
