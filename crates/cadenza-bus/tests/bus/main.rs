//! Event bus integration tests: one contract suite (`contract`) run against `LogBus` always
//! and against `KafkaBus` on a real broker, plus each implementation's own cases.

mod contract;
mod kafka;
mod log;
