//! raftsim: a deterministic discrete-event simulator for replicated key-value stores.
