//! Errors of the ingest service below the gRPC edge; `grpc.rs` turns each into the most
//! specific status, in one place.

use std::sync::Arc;

use saleboard_storage::StorageError;

/// Why a request (or a batch of it) was not handled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The writer's queue is full (unary requests; streams wait instead).
    #[error("the ingest writer's queue is full; retry with backoff")]
    QueueFull,
    /// The writer has stopped (shutdown).
    #[error("the ingest writer is shutting down; retry on another instance")]
    WriterGone,
    /// No event is configured.
    #[error("no event is configured; the organizer must call AdminService.SetEvent first")]
    NoEvent,
    /// The secret names no active key.
    #[error("unknown or revoked API key; ask the organizer for a key of your site")]
    UnknownKey,
    /// Storage failed on this request's behalf (logged where it is turned into a status).
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// A group commit failed: logged once by the writer for every request it held.
    #[error("group commit failed: {0}")]
    Commit(Arc<StorageError>),
}

impl From<StorageError> for IngestError {
    fn from(e: StorageError) -> Self {
        Self::Storage(Arc::new(e))
    }
}
