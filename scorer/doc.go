// Package scorer ranks a catalog of items for a user: it holds an embedding model
// (user and item vectors plus an optional item bias, read and written in the
// safetensors format), folds in users the model does not know from their recent
// items, and returns the top-k items for a batch of query vectors through one
// interface, Scorer, with three backends:
//
//   - cpu: blocked matrix products over all cores with a bounded heap per user;
//   - cuda: the item matrix resident in GPU memory, cuBLAS SGEMM for the scores and a
//     top-k kernel compiled at run time by NVRTC; the CUDA libraries are loaded at run
//     time (no cgo), so the package builds and its tests pass without a GPU;
//   - remote: a client of the Open Inference Protocol (KServe v2, HTTP/JSON).
//
// A score is s(u, i) = q_u·y_i + b_i. Every backend breaks ties by item index
// ascending, so CPU and CUDA return the same top-k on the same model.
//
// Batcher coalesces concurrent single-user requests into one Score call. Training
// (implicit-feedback ALS) and offline evaluation live in the als subpackage; the
// model card (Card) lives here so that servers can read it without the trainer.
//
// The package must stay free of DuckDB and database/sql: its stripped test binary is
// carried to GPU machines to run the CPU/CUDA parity test.
package scorer
