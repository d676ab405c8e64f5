//! The REST `CommunicationIdentifierModel` (callsign-common's `Deserialize` for
//! `CommunicationIdentifier`), as a client reads it from a response: any JSON is refused or read
//! into an identifier whose own model reads back to the same identifier and the same JSON.

#![no_main]
#![forbid(unsafe_code)]

use callsign_common::CommunicationIdentifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = serde_json::from_slice::<CommunicationIdentifier>(data) else {
        return;
    };
    let json = serde_json::to_value(&id).expect("identifiers serialize");
    assert_eq!(json["rawId"], id.raw_id());
    assert_eq!(json["kind"], id.kind().as_str());
    let back: CommunicationIdentifier =
        serde_json::from_value(json.clone()).expect("a serialized identifier deserializes");
    assert_eq!(back, id);
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        json,
        "the wire model is stable"
    );
});
