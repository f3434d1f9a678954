//! Fuzzes the server's request decoding: each input becomes a request to one endpoint (path
//! parameters, query, `Range`, body) that every extractor of that endpoint reads, under the
//! API's layers; the answer must be a pass or an error whose code the endpoint lists
//! (`server::fuzzing::check_request`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    server::fuzzing::check_request(data);
});
