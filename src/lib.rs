//! nccltune: get NCCL and InfiniBand/RoCE right on GPU nodes.
//!
//! The pipeline, one folder or file per stage:
//! `probe` (run or replay named probes) → `parse` (pure text → typed values) →
//! `node` (the node report: facts and findings) → the commands that judge or act on facts →
//! a report model per command, rendered by `render` as table, JSON, env, Prometheus or JUnit.
//! Only `src/cli` and `main.rs` know the argument parser; everything here takes plain values.

pub mod bench;
pub mod config;
pub mod configure;
pub mod finding;
pub mod fleet;
pub mod hw;
pub mod input;
pub mod lint;
pub mod nccl;
pub mod node;
pub mod outcome;
pub mod output;
pub mod parse;
pub mod place;
pub mod probe;
pub mod render;
pub mod verify;
