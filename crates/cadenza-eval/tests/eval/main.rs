//! Integration tests of cadenza-eval: the harness on a synthetic catalogue (fast, always), and
//! KNN vs random on the real tiny corpus when it and the models are there.

mod harness;
mod real_corpus;
