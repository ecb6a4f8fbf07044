//! What each deploy shipped: the commits and merged pull requests it brought to its environment,
//! from the range its went-live batch read (`ancestry::batch::listing`).

pub mod changes;
