//! gRPC statuses: field-level INVALID_ARGUMENT with `google.rpc.BadRequest` details, and the
//! storage errors as statuses that never leak internals.

use saleboard_storage::StorageError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// INVALID_ARGUMENT naming the field, with a `BadRequest` field violation.
#[must_use]
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// The status for a storage error, logging the error (database details go to the log, not to
/// the client). A retryable fault is logged at debug only: its episode is logged once, when
/// it starts and ends (storage for failed writes, health for an unreachable database), not
/// once per request.
#[must_use]
pub fn from_storage(err: &StorageError) -> Status {
    match err {
        StorageError::AlreadyExists { .. }
        | StorageError::NotFound { .. }
        | StorageError::EventChange(_)
        | StorageError::Action(_)
        | StorageError::Adjust(_) => {}
        StorageError::Unavailable { cause, .. } => {
            tracing::debug!(error = %cause, "database unavailable");
        }
        other => tracing::error!(error = %other, "storage error"),
    }
    status_of(err)
}

/// The status for a storage error, without logging (for a caller that logged it once and
/// answers many requests with it).
#[must_use]
pub fn status_of(err: &StorageError) -> Status {
    match err {
        StorageError::AlreadyExists { .. } => Status::already_exists(err.to_string()),
        StorageError::NotFound { .. } => Status::not_found(err.to_string()),
        StorageError::EventChange(why) => Status::failed_precondition(why.to_string()),
        StorageError::Action(why) if why.is_permission() => {
            Status::permission_denied(why.to_string())
        }
        StorageError::Action(why) => Status::failed_precondition(why.to_string()),
        StorageError::Adjust(why) if why.is_unknown() => Status::not_found(why.to_string()),
        StorageError::Adjust(why) => Status::failed_precondition(why.to_string()),
        // Says which fault (the client's operator may see it), never the driver's text.
        StorageError::Unavailable { fault, .. } => {
            Status::unavailable(format!("{}; retry later", fault.describe()))
        }
        _ => Status::internal("internal storage error; the operators have it in their logs"),
    }
}

/// The canonical name of a gRPC status code, as the gRPC documentation spells it.
#[must_use]
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_field_carries_the_violation() {
        let s = invalid_field("site_id", "must not be empty");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "site_id: must not be empty");
        let details = s.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "site_id");
    }

    #[test]
    fn storage_errors_map_to_specific_codes() {
        let e = StorageError::NotFound {
            what: "site",
            id: "x".into(),
        };
        assert_eq!(from_storage(&e).code(), Code::NotFound);
        let e = StorageError::AlreadyExists {
            what: "site",
            id: "x".into(),
        };
        assert_eq!(from_storage(&e).code(), Code::AlreadyExists);
        let e = StorageError::Unavailable {
            fault: saleboard_storage::Fault::DiskFull,
            cause: "database or disk is full (secret-path)".into(),
        };
        let s = from_storage(&e);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "the database's disk is full; retry later");
        let e = StorageError::Corrupt {
            table: "ledger",
            detail: "secret-detail".into(),
        };
        let s = from_storage(&e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret-detail"));
    }
}
