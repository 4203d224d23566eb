//! The managed Python environment: a virtual environment created from a
//! committed, fully pinned and hashed lock.
