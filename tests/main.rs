//! The end-to-end suite, one test binary: each file beside this one is a module of it, and the
//! helpers in `support/` are shared. One binary rather than one per file keeps the build small
//! (every test binary links the whole service). Two files stay binaries of their own because
//! they measure their process's peak memory: `object_stores_memory.rs` and `webhook_delivery.rs`.
//!
//! One file's tests: `cargo test -p egress-functions --test end_to_end http_api::`.

#[path = "support/delivery.rs"]
mod delivery;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/object_stores.rs"]
mod object_store_emulators;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/sample_events.rs"]
mod sample_events;
mod support;
#[path = "support/tools.rs"]
mod tools;
#[path = "support/webhook_receiver.rs"]
mod webhook_receiver;

mod asl_semantics;
mod asl_vs_moto;
mod audit_and_secrets;
mod avro_arrow;
mod aws_adapters;
mod aws_end_to_end;
mod crash_safety;
mod cron_corpus;
mod delivery_end_to_end;
mod demo;
mod destinations_end_to_end;
mod email_delivery;
mod encrypted_exports;
mod eventbridge_scheduler;
mod excel;
mod field_mapping;
mod goaml_example;
mod http_api;
mod lambda_events;
mod lambda_runtime;
mod notifications;
mod object_stores;
mod packaging;
mod pdf;
mod run_control;
mod schedules;
mod sftp_delivery;
mod templates;
mod transfer_connector;
mod xml;
