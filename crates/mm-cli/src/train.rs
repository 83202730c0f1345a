//! `mm train <task> ...`: every task is on the engine (`crate::engine`'s one list).

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// The tasks on the engine.
    #[command(flatten)]
    Engine(crate::engine::EngineTrain),
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Engine(c) => crate::engine::run_train(c),
    }
}
