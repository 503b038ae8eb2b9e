//! Shared machinery of the experiments: listeners → splits → test cases, and training the
//! requested methods on one item table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::error::Result;
use crate::evaluate::TestCase;
use crate::items::ItemTable;
use crate::listeners::{ListenGenerator, Listener, ListenerConfig};
use crate::methods::{
    Bert4Rec, Bert4RecConfig, CurvePoint, ItemInput, Knn, MultiCentroid, PopFusion, Popularity,
    RandomRanker, Ranker, Shallow, ShallowConfig, TrainSet,
};
use crate::metrics;
use crate::split::{SplitMode, UserSplit, leave_last_out, sequences};

/// Listeners, their splits and test cases over one catalogue.
#[derive(Debug, Clone)]
pub struct Setup {
    pub catalogue: Catalogue,
    pub listeners: Vec<Listener>,
    /// Novel-mode leave-last-out splits (targets are first listens).
    pub splits: Vec<UserSplit>,
    /// Repeat-aware cases: input = every play but the last, target = the last play.
    pub repeat_cases: Vec<TestCase>,
    pub group_of: HashMap<String, String>,
}

impl Setup {
    pub fn new(catalogue: Catalogue, config: ListenerConfig) -> Setup {
        let (events, listeners) = ListenGenerator::generate(&catalogue, config);
        let seqs = sequences(&events, &catalogue);
        let group_of: HashMap<String, String> = listeners
            .iter()
            .map(|l| (l.user_id.clone(), l.dominant().name().to_owned()))
            .collect();
        let splits = leave_last_out(&seqs, SplitMode::Novel, 2);
        let repeat_cases = leave_last_out(&seqs, SplitMode::RepeatAware, 2)
            .into_iter()
            .map(|s| TestCase {
                group: group_of.get(&s.user_id).cloned().unwrap_or_default(),
                input: s.test_input(),
                target: s.test,
                user_id: s.user_id,
            })
            .collect();
        Setup {
            catalogue,
            listeners,
            splits,
            repeat_cases,
            group_of,
        }
    }

    /// Training data of the given splits (indices into `splits`).
    pub fn train_set(&self, users: &[usize]) -> TrainSet {
        TrainSet {
            sequences: users
                .iter()
                .map(|&u| self.splits[u].train.clone())
                .collect(),
            valid: users
                .iter()
                .map(|&u| (self.splits[u].train.clone(), self.splits[u].valid))
                .collect(),
            exclude_seen: true,
        }
    }

    /// Novel-mode test cases of the given splits.
    pub fn cases(&self, users: &[usize]) -> Vec<TestCase> {
        users
            .iter()
            .map(|&u| {
                let s = &self.splits[u];
                TestCase {
                    user_id: s.user_id.clone(),
                    input: s.test_input(),
                    target: s.test,
                    group: self.group_of.get(&s.user_id).cloned().unwrap_or_default(),
                }
            })
            .collect()
    }

    /// Training popularity of the given splits.
    pub fn popularity(&self, users: &[usize]) -> metrics::Popularity {
        metrics::Popularity::from_histories(
            self.catalogue.len(),
            users.iter().map(|&u| self.splits[u].train.as_slice()),
        )
    }

    pub fn all_users(&self) -> Vec<usize> {
        (0..self.splits.len()).collect()
    }
}

/// The methods by their serving names.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Random,
    Popularity,
    Knn,
    Multicentroid,
    Shallow,
    Bert4rec,
    #[value(name = "bert4rec_id")]
    Bert4recId,
    #[value(name = "bert4rec_pop")]
    Bert4recPop,
}

impl Method {
    /// Whether the method's output depends on the item table.
    pub fn uses_audio(self) -> bool {
        !matches!(
            self,
            Method::Random | Method::Popularity | Method::Bert4recId
        )
    }
}

/// How much training the experiments may spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub shallow: ShallowConfig,
    pub bert4rec: Bert4RecConfig,
    pub id_dim: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            shallow: ShallowConfig::default(),
            bert4rec: Bert4RecConfig::default(),
            id_dim: 64,
        }
    }
}

/// Trained rankers and what their training looked like.
#[derive(Debug, Default)]
pub struct Trained {
    pub rankers: Vec<Arc<dyn Ranker>>,
    /// Learning curves by method name.
    pub curves: BTreeMap<String, Vec<CurvePoint>>,
    /// Why each trained method stopped.
    pub stopped: BTreeMap<String, String>,
}

impl<R: Ranker + ?Sized> Ranker for Arc<R> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn score_all(&self, history: &[usize], counts: &crate::methods::Counts) -> Vec<f32> {
        (**self).score_all(history, counts)
    }
}

/// Train (or build) `methods` on `table` from `data`.
pub fn train_methods(
    table: &ItemTable,
    data: &TrainSet,
    methods: &[Method],
    budget: &Budget,
) -> Result<Trained> {
    let mut out = Trained::default();
    let n = table.len();
    let mut bert: Option<Arc<Bert4Rec>> = None;
    for &m in methods {
        let r: Arc<dyn Ranker> = match m {
            Method::Random => Arc::new(RandomRanker {
                n_items: n,
                seed: 5,
            }),
            Method::Popularity => Arc::new(Popularity::fit(n, &data.sequences)),
            Method::Knn => Arc::new(Knn::new(table)),
            Method::Multicentroid => Arc::new(MultiCentroid::new(table, 3)),
            Method::Shallow => {
                let s = Shallow::train(table, data, &budget.shallow)?;
                out.curves.insert("shallow".into(), s.curve.clone());
                Arc::new(s)
            }
            Method::Bert4rec | Method::Bert4recPop => {
                let b = match &bert {
                    Some(b) => b.clone(),
                    None => {
                        let b = Arc::new(Bert4Rec::train(table, data, budget.bert4rec.clone())?);
                        out.curves.insert("bert4rec".into(), b.curve.clone());
                        out.stopped.insert("bert4rec".into(), b.stopped.clone());
                        bert = Some(b.clone());
                        b
                    }
                };
                if m == Method::Bert4recPop {
                    Arc::new(PopFusion {
                        inner: b,
                        name: "bert4rec_pop".into(),
                    })
                } else {
                    b
                }
            }
            Method::Bert4recId => {
                let cfg = Bert4RecConfig {
                    items: ItemInput::IdOnly { dim: budget.id_dim },
                    ..budget.bert4rec.clone()
                };
                let b = Bert4Rec::train(table, data, cfg)?;
                out.curves.insert("bert4rec_id".into(), b.curve.clone());
                out.stopped.insert("bert4rec_id".into(), b.stopped.clone());
                Arc::new(b)
            }
        };
        out.rankers.push(r);
    }
    Ok(out)
}
