//! Runtime dispatch of element-wise loops to the widest vector instructions
//! the CPU has: `gradus_optim`'s `multiversion!`, shared with the tuner.

pub(crate) use gradus_optim::multiversion;
