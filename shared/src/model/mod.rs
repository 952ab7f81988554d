//! The domain model: what an export is, what a user asks for, who asks.

pub mod credential;
pub mod destination;
pub mod export;
pub mod fields;
pub mod ids;
pub mod notify;
pub mod packaging;
pub mod principal;
pub mod recipient_key;
pub mod schedule;
pub mod settings;
pub mod spec;
pub mod template;
pub mod validation;
pub mod xml;

pub use export::{
    ChunkRecord, DeliveredFile, Delivery, DueAudit, Export, ExportError, ExportResult, ExportStatus, Lease, Progress, ResultFile, Step,
};
pub use principal::{ApiKeyRecord, Permission, Principal};
pub use spec::{
    Compression, DestinationSpec, ExportSpec, Filter, FilterOp, FormatKind, FormatSpec, SortKey, SortOrder, SourceKind, SourceSpec,
    TimeRange,
};
pub use validation::{FieldError, ValidationErrors};
