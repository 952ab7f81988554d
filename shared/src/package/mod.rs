//! Packaging of finished files: checksums and compression while rows are written (encode), and
//! afterwards zip archives, encryption to recipients (OpenPGP, age) and a manifest (the Encrypt
//! stage, through [`packager::package`]).

pub mod age;
pub mod compress;
pub mod hashing;
pub mod manifest;
pub mod openpgp;
pub mod packager;
pub mod pipe;
pub mod recipients;
pub mod secret;
pub mod zip_archive;

pub use compress::{Compressor, ZIP_CONTENT_TYPE, content_type};
pub use hashing::HashingWriter;
pub use packager::{Encryption, InputFile, ManifestContext, PackageError, PackagingOptions, PackedFile, ZipOptions, package};
pub use secret::Secret;
