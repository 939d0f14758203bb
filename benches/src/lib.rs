//! Shared pieces of the carbonx benchmarks: a counting allocator and the engine workload.

pub mod alloc_counter;
pub mod workload;
