//! JSON Schemas of the suite format and of `llmtest.yaml`, generated from the types.
//! Committed under `schemas/`; a test fails when they are stale.

/// The JSON Schema of a suite file, pretty-printed.
pub fn suite_schema() -> String {
    let s = schemars::schema_for!(crate::suite::SuiteFile);
    serde_json::to_string_pretty(&s).expect("schema serializes") + "\n"
}

/// The JSON Schema of `llmtest.yaml`, pretty-printed.
pub fn config_schema() -> String {
    let s = schemars::schema_for!(crate::config::ConfigFile);
    serde_json::to_string_pretty(&s).expect("schema serializes") + "\n"
}
